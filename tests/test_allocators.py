"""The build process's memory settings: each checked in a fresh interpreter, since they act
on first imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT, write_jsonl


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_pyarrow_without_pandas_still_converts_to_pandas_on_request():
    done = run_python(
        """
        import sys
        from pmc_data import allocators
        allocators.configure()
        allocators.pyarrow_without_pandas()
        import pyarrow as pa
        table = pa.table({"id": ["a", "b"], "n": pa.array([1, 2], pa.int64())})
        assert "pandas" not in sys.modules, "pa.table imported pandas"
        frame = table.to_pandas()  # imports pandas now, on request
        assert "pandas" in sys.modules
        assert frame["id"].tolist() == ["a", "b"] and frame["n"].tolist() == [1, 2]
        assert pa.Table.from_pandas(frame, preserve_index=False).to_pylist() == table.to_pylist()
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_pyarrow_without_pandas_leaves_an_imported_pandas_alone():
    done = run_python(
        """
        import pandas as pd
        from pmc_data import allocators
        allocators.pyarrow_without_pandas()
        import pyarrow as pa
        assert pa.array(pd.Series([1, 2])).to_pylist() == [1, 2]
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr


def test_a_build_imports_neither_pandas_nor_datasets(tmp_path):
    docs = tmp_path / "docs.jsonl"
    write_jsonl(
        docs,
        [
            {"id": f"d{i}", "text": f"Document {i} about the liver and the kidney."}
            for i in range(6)
        ],
    )
    for executor in ("threads", "processes"):
        done = run_python(
            f"""
            import sys
            from pmc_data.cli import main
            code = main(["-q", "build", "dedup", "--input", "docs={docs}", "--output",
                         "{tmp_path / executor}", "--workers", "2", "--executor", "{executor}"])
            assert code == 0, code
            loaded = sorted({{"pandas", "datasets"}} & set(sys.modules))
            assert not loaded, loaded
            print("ok")
            """
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == "ok"
