# Sourced by .ci/services.sh. Local emulators for the S3 and DynamoDB backends (no Docker here):
#   moto_server (PyPI moto[server]) on 127.0.0.1:5000: S3 and DynamoDB;
#   dynalite (npm) on 127.0.0.1:4567: a second, independent DynamoDB.
# Dummy credentials; both keep their data in memory and lose it when stopped.

# --- moto_server 127.0.0.1:5000 ---
if ! port_open 5000; then
  command -v moto_server >/dev/null 2>&1 || python3 -m pip install -q "moto[server]"
  mkdir -p /tmp/shardfold-moto
  # start-stop-daemon closes every inherited descriptor (a pipe held open would keep a caller
  # that reads this script's output waiting)
  start-stop-daemon --start --background --make-pidfile --pidfile /tmp/shardfold-moto/pid \
    --chdir /tmp/shardfold-moto --output /tmp/shardfold-moto/log \
    --startas "$(command -v moto_server)" -- -H 127.0.0.1 -p 5000
fi
wait_for moto port_open 5000
# moto keeps every earlier run's objects and tables in memory and slows down with them (its
# tests took longer run after run): emptied here; the tests create their bucket and tables
curl -s -o /dev/null -X POST http://127.0.0.1:5000/moto-api/reset ||
  echo "services: moto could not be reset (it keeps earlier runs' data)"

# --- dynalite 127.0.0.1:4567 ---
dynalite_dir=/opt/shardfold-dynalite
if ! port_open 4567; then
  if [ ! -x "$dynalite_dir/node_modules/.bin/dynalite" ]; then
    mkdir -p "$dynalite_dir"
    (cd "$dynalite_dir" && npm install --silent --no-audit --no-fund dynalite@3 >/dev/null)
  fi
  start-stop-daemon --start --background --make-pidfile --pidfile "$dynalite_dir/pid" \
    --chdir "$dynalite_dir" --output "$dynalite_dir/log" \
    --startas "$(command -v node)" -- node_modules/.bin/dynalite --host 127.0.0.1 --port 4567
fi
wait_for dynalite port_open 4567

export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export SHARDFOLD_S3_ENDPOINT="${SHARDFOLD_S3_ENDPOINT:-http://127.0.0.1:5000}"
export SHARDFOLD_DYNAMODB_MOTO_ENDPOINT="${SHARDFOLD_DYNAMODB_MOTO_ENDPOINT:-http://127.0.0.1:5000}"
export SHARDFOLD_DYNAMODB_DYNALITE_ENDPOINT="${SHARDFOLD_DYNAMODB_DYNALITE_ENDPOINT:-http://127.0.0.1:4567}"
