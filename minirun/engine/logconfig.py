"""A container's logging driver: `--log-driver` and `--log-opt`, as HostConfig.LogConfig.

Docker keeps a container's output through a logging driver chosen at create. minirun has three:

  json-file  Docker's default: containers/<id>/<id>-json.log, one JSON object per line
             (engine/logs.py). No limit unless asked: `--log-opt max-size=10m` rotates the
             file when it passes that size to <id>-json.log.1, .2 ... up to `max-file` files
             in all (the oldest is dropped), as Docker's json-file does (moby
             daemon/logger/loggerutils/logfile.go). Sizes are go-units FromHumanSize: decimal,
             100k = 100000 bytes.
  local      Docker's is a compressed protobuf file with a limit by default. Here it is the
             json-file format with local's defaults (max-size 20m, max-file 5), so `logs`,
             rotation and `compose logs` are the same code; rotated files are not compressed
             (`compress` is accepted and not applied).
  none       nothing is kept; `logs` says so, as Docker does.

The rules and messages are the daemon's (jsonfilelog.New, ValidateLogOpt). This module is
read by the monitor (limits()), so it imports nothing (tests/unit/test_startup_budget.py).
"""

from __future__ import annotations

DRIVERS = ("json-file", "local", "none")
DEFAULT = "json-file"
# Docker's local driver: defaultMaxFileSize 20 MiB, defaultMaxFileCount 5, compressed.
LOCAL_DEFAULTS = {"max-size": 20 * 1024 * 1024, "max-file": 5}
# What json-file's ValidateLogOpt accepts (labels, env and tag add attributes Docker's own
# readers do not show either: accepted, not applied).
JSON_FILE_OPTS = ("max-size", "max-file", "compress", "labels", "labels-regex", "env",
                  "env-regex", "tag")
LOCAL_OPTS = ("max-size", "max-file", "compress")


class LogConfigError(ValueError):
    """A driver or option Docker would refuse; the message is Docker's."""


def human_size(text: str) -> int:
    """go-units FromHumanSize: "100k" -> 100000, "1.5m" -> 1500000, "20MB", "512" bytes."""
    s = text.strip()
    i = 0
    while i < len(s) and (s[i].isdigit() or s[i] == "."):
        i += 1
    num, unit = s[:i], s[i:].strip().lower()
    if unit.endswith("ib"):
        unit = unit[:-2]
    elif unit.endswith("b"):
        unit = unit[:-1]
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}.get(unit)
    try:
        value = float(num)
    except ValueError:
        value = None
    if scale is None or value is None:
        raise LogConfigError(f"invalid size: '{text}'")
    return int(value * scale)


def parse(driver: str, opts: list[str] | dict) -> dict:
    """--log-driver and --log-opt K=V (or the API's LogConfig.Config) -> {"Type", "Config"},
    checked as the daemon checks them at create. An empty driver is json-file."""
    driver = driver or DEFAULT
    if driver not in DRIVERS:
        raise LogConfigError(f"logging driver {driver!r} is not supported by minirun: use "
                             "json-file (the default), local or none")
    config: dict = {}
    if isinstance(opts, dict):
        config = {str(k): str(v) for k, v in opts.items()}
    else:
        for text in opts:
            k, sep, v = text.partition("=")
            if not sep or not k:
                raise LogConfigError(f"invalid log opt {text!r}: use KEY=VALUE")
            config[k] = v
    if driver == "none":
        if config:
            raise LogConfigError(f"unknown log opt '{next(iter(config))}' for none log driver")
        return {"Type": driver, "Config": {}}
    allowed = JSON_FILE_OPTS if driver == "json-file" else LOCAL_OPTS
    for k in config:
        if k not in allowed:
            raise LogConfigError(f"unknown log opt '{k}' for {driver} log driver")
    limits({"Type": driver, "Config": config})  # the values, checked now, not at start
    return {"Type": driver, "Config": config}


def limits(log_config: dict | None) -> tuple[int, int] | None:
    """(max_size bytes, 0 for none; max_file >= 1) for the monitor's writer, or None: no log
    at all (the none driver)."""
    log_config = log_config or {}
    driver = log_config.get("Type") or DEFAULT
    if driver == "none":
        return None
    config = log_config.get("Config") or {}
    size, files = (LOCAL_DEFAULTS["max-size"], LOCAL_DEFAULTS["max-file"]) \
        if driver == "local" else (0, 1)
    if "max-size" in config:
        size = human_size(config["max-size"])
        if size <= 0:
            raise LogConfigError("max-size must be a positive number")
    if "max-file" in config:
        try:
            files = int(config["max-file"])
        except ValueError:
            raise LogConfigError(f"strconv.Atoi: parsing {config['max-file']!r}: invalid "
                                 "syntax (max-file is a number)") from None
        if files < 1:
            raise LogConfigError("max-file cannot be less than 1")
    compress = str(config.get("compress", "")).lower()
    if compress not in ("", "true", "false", "1", "0", "t", "f"):
        raise LogConfigError(f"invalid compress value {config['compress']!r}: true or false")
    if compress in ("true", "1", "t") and driver == "json-file" and (files == 1 or not size):
        raise LogConfigError("compress cannot be true when max-file is less than 2 or max-size "
                             "is not set")
    return size, files
