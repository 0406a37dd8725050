# Sourced by .ci/services.sh. The reference implementations the foreign-format tests check our
# exports with: Apache DataSketches for Python (PyPI `datasketches`).
if ! python3 -c 'import datasketches' >/dev/null 2>&1; then
  python3 -m pip install -q --disable-pip-version-check datasketches
fi
python3 -c 'import datasketches' && echo "services: python datasketches ready"
