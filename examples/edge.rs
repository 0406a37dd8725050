//! Edge: a device pre-aggregates offline into a local SQLite file, and later uploads each
//! sealed minute as **one partial** with a contribution ID. Uploading twice changes nothing.
//!
//! `cargo run --release -p shardfold-examples --features sqlite --example edge`
//!
//! The device (a sensor gateway, a phone, a point-of-sale terminal) is offline for three
//! hours. It folds its readings into a `Series<Stats, f64>` in a file of its own — the same
//! dedup, windows and exact sums as in the cloud. When it is back online it sends, per minute,
//! the minute's `Stats` wrapped in a `Partial`, with the ID `"<device>/<minute start>"`, into a
//! central `Series<Partials<Stats>, Partial<Stats>>`. The upload is retried (its reply was lost)
//! and repeated (the app restarted): the central answer is the device's, exactly, once.
//!
//! Only published features are used (`sqlite`); the "cloud" store is a second SQLite file here,
//! and would be `redis://…` or `postgres://…` in production.

use std::process::ExitCode;
use std::time::Duration;

use shardfold::agg::{Partial, Partials};
use shardfold::store::{Clock, Series, SeriesConfig, SystemClock, connect};
use shardfold::{Event, Stats, codec};

const MINUTE: u64 = 60_000;
const DEVICE: &str = "gateway-17";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> shardfold::Result<bool> {
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    let device_db = dir.join(format!("shardfold-edge-device-{pid}.db"));
    let cloud_db = dir.join(format!("shardfold-edge-cloud-{pid}.db"));
    let now = SystemClock.now_ms();
    let offline_from = now - now % MINUTE - 3 * 60 * MINUTE;

    // 1. offline: the device folds its readings into its own file, one event per reading
    //    (its sensor bus delivers some twice: dedup by reading ID, as in the cloud)
    let device: Series<Stats, f64> = Series::open(
        connect(&format!("sqlite://{}", device_db.display())).await?,
        "temperature",
        SeriesConfig::new(Stats::default()).window(Duration::from_secs(60)),
    )
    .await?;
    let readings: Vec<Event<f64>> = (0..18_000u64)
        .map(|i| {
            let t = offline_from + i * 600; // one reading every 0.6 s for three hours
            let celsius = 20.0 + ((i % 97) as f64) / 8.0 - ((i % 13) as f64) / 4.0;
            Event::new(format!("reading-{i}").as_str(), t, celsius)
        })
        .collect();
    let resent: Vec<Event<f64>> = readings.iter().step_by(7).cloned().collect();
    for batch in readings.chunks(500).chain(resent.chunks(500)) {
        let report = device.fold(batch).await?;
        if report.failed().next().is_some() {
            eprintln!("device fold failed: {report:?}");
            return Ok(false);
        }
    }
    // the minutes that are over (the current one may still get readings)
    let sealed = device.query_range(offline_from, now - now % MINUTE).await?;
    println!(
        "device: {} readings ({} resent) folded offline into {} minutes in {}",
        readings.len(),
        resent.len(),
        sealed.window_count(),
        device_db.display()
    );

    // 2. online: one upload per sealed minute, ID "<device>/<minute start>"
    let uploads: Vec<Event<Partial<Stats>>> = sealed
        .windows()
        .map(|(start, stats)| {
            Event::new(
                format!("{DEVICE}/{start}").as_str(),
                start,
                Partial(stats.clone()),
            )
        })
        .collect();
    let cloud = cloud_series(&format!("sqlite://{}", cloud_db.display())).await?;
    let first = upload(&cloud, &uploads).await?;
    let once = cloud.query_range(offline_from, now).await?;
    // the reply was lost and the device retries the whole upload; later the app restarts and
    // sends everything again
    upload(&cloud, &uploads).await?;
    upload(&cloud, &uploads).await?;
    let thrice = cloud.query_range(offline_from, now).await?;

    // 3. the answer: the cloud holds exactly what the device folded, once
    let device_total = sealed.total()?;
    let cloud_total = thrice.total()?.into_inner();
    let exact = readings
        .iter()
        .filter(|e| e.time_ms < now - now % MINUTE)
        .map(|e| e.value)
        .collect::<Vec<_>>();
    // readings are multiples of 1/8 well below 2^50: plain summation is exact here
    let exact_sum: f64 = exact.iter().sum();
    let exact_min = exact.iter().copied().fold(f64::INFINITY, f64::min);
    let exact_max = exact.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    println!(
        "cloud: {first} partials uploaded, then the same upload twice more\n\
         \n                 | count | sum              | min   | max\n\
         device (offline) | {:>5} | {:>16.4} | {:>5.2} | {:>5.2}\n\
         cloud            | {:>5} | {:>16.4} | {:>5.2} | {:>5.2}\n\
         exact            | {:>5} | {:>16.4} | {:>5.2} | {:>5.2}",
        device_total.count(),
        device_total.sum(),
        device_total.min().unwrap_or(f64::NAN),
        device_total.max().unwrap_or(f64::NAN),
        cloud_total.count(),
        cloud_total.sum(),
        cloud_total.min().unwrap_or(f64::NAN),
        cloud_total.max().unwrap_or(f64::NAN),
        exact.len(),
        exact_sum,
        exact_min,
        exact_max,
    );
    println!(
        "cloud duplicates refused: {} (= 2 × {first} re-uploads)",
        thrice.tally().duplicates
    );
    let same_bytes = codec::encode(&once.total()?) == codec::encode(&thrice.total()?);
    let ok = same_bytes
        && codec::encode(&device_total) == codec::encode(&cloud_total)
        && cloud_total.count() == exact.len() as u64
        && cloud_total.sum() == exact_sum
        && cloud_total.min() == Some(exact_min)
        && cloud_total.max() == Some(exact_max)
        && thrice.tally().duplicates == 2 * first as u64;
    println!(
        "{}",
        if ok {
            "MATCH: the cloud's state is byte-identical to the device's; re-uploads changed nothing"
        } else {
            "MISMATCH"
        }
    );
    for path in [&device_db, &cloud_db] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    Ok(ok)
}

/// The central metric of uploaded partials: one-minute windows, and a dedup horizon (and
/// retention) long enough for a device that was offline for a day.
async fn cloud_series(url: &str) -> shardfold::Result<Series<Partials<Stats>, Partial<Stats>>> {
    let config = SeriesConfig::new(Partials::<Stats>::default())
        .window(Duration::from_secs(60))
        .horizon(Duration::from_secs(24 * 3600))
        .retention(Duration::from_secs(7 * 24 * 3600));
    Series::open(connect(url).await?, "temperature-uploads", config).await
}

/// Sends the partials in batches of 100 (what one request would carry); returns how many were
/// sent. A real client retries a batch whose events came back `Failed`.
async fn upload(
    cloud: &Series<Partials<Stats>, Partial<Stats>>,
    uploads: &[Event<Partial<Stats>>],
) -> shardfold::Result<usize> {
    for batch in uploads.chunks(100) {
        let report = cloud.fold(batch).await?;
        if let Some(i) = report.failed().next() {
            return Err(shardfold::Error::InvalidParameter {
                name: "upload",
                reason: format!("partial {i} failed: {:?}", report.outcomes[i]),
            });
        }
    }
    Ok(uploads.len())
}
