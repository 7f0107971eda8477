"""Memory stays bounded: an input far larger than ``maxRowsInMemory`` /
``maxBytesInMemory`` allow is ingested by a real process whose peak RSS growth is
measured (Linux: VmHWM reset through /proc/self/clear_refs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROWS = 200_000
# Measured here: about 45-60 MiB with these limits, about 150 MiB when every row
# stays in memory (maxRowsInMemory 1 M): the bound tells the two apart.
BOUND_MIB = 80

PROBE = """
import json, sys
from overlord.ingest import Ingestion, IngestSpec

path, deep, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path, "w") as out:
    for i in range(rows):
        out.write(
            '{"time":"2024-01-%02dT%02d:%02d:%02dZ","channel":"#c%d","page":"Page %d",'
            '"user":"user%d","added":%d}\\n'
            % (1 + i % 2, i % 24, i % 60, (i // 60) % 60, i % 7, i, i % 5000, i % 1000)
        )

def spec(source, limits):
    return IngestSpec.from_json({
        "dataSchema": {
            "dataSource": "wiki",
            "timestampSpec": {"column": "time", "format": "iso"},
            "dimensionsSpec": {"dimensions": ["channel", "page", "user"]},
            "metricsSpec": [{"type": "count", "name": "count"},
                            {"type": "longSum", "name": "added", "fieldName": "added"}],
            "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "none"},
        },
        "ioConfig": {"inputSource": {"type": "local", "files": [source]},
                     "inputFormat": {"type": "json"}},
        "tuningConfig": limits,
    })

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])

# Warm up: every module and Arrow kernel loaded before measuring.
with open(path) as f, open(path + ".head", "w") as out:
    out.writelines(f.readline() for _ in range(2000))
Ingestion(spec(path + ".head", {"maxRowsInMemory": 100}), storage=deep + "0", version="v").run()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS:")
segments = Ingestion(
    spec(path, {"maxRowsInMemory": 10000, "maxBytesInMemory": 2000000}),
    storage=deep, version="v",
).run()
print(json.dumps({"growth_kib": status("VmHWM:") - before,
                  "rows": sum(s.num_rows for s in segments),
                  "segments": len(segments)}))
"""


def test_peak_memory_growth_is_bounded(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            str(tmp_path / "in.json"),
            str(tmp_path / "deep"),
            str(ROWS),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout)
    assert (result["rows"], result["segments"]) == (ROWS, 2)
    assert result["growth_kib"] < BOUND_MIB * 1024, result
