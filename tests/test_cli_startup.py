"""The command answers at once when it needs no training: importing the CLI imports no torch
(each command imports what it needs when it runs), and `sgdlab list` reads a cached listing in
a fresh process. The timing itself is a benchmark (benchmarks/cli_startup.py), not a test."""

from __future__ import annotations

import subprocess
import sys

from sgdlab.cli import catalog


def test_importing_the_cli_or_the_package_imports_no_torch():
    heavy = "('torch', 'numpy', 'matplotlib')"
    code = f"import sys, sgdlab, sgdlab.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_public_api_is_there_on_first_use():
    import sgdlab

    assert callable(sgdlab.run) and sgdlab.models.get("mlp").name == "mlp"
    assert set(sgdlab.__all__) <= set(dir(sgdlab))


def test_a_fresh_listing_reads_the_cache_its_first_call_wrote(tmp_path, monkeypatch):
    calls: list[str] = []

    def live(kind: str) -> list[tuple[str, str, str]]:
        calls.append(kind)
        return [(f"{kind}-a", "help", "x=1")]

    monkeypatch.setenv("SGDLAB_CACHE", str(tmp_path))
    monkeypatch.setattr(catalog, "REGISTRIES", {k: ("sgdlab.not_imported", k) for k in catalog.REGISTRIES})
    monkeypatch.setattr(catalog, "live_rows", live)
    assert catalog.rows("models") == [("models-a", "help", "x=1")]
    assert sorted(calls) == sorted(catalog.REGISTRIES)  # every registry listed once, and cached
    calls.clear()
    assert catalog.rows("probes") == [("probes-a", "help", "x=1")] and calls == []
    monkeypatch.setattr(catalog, "fingerprint", lambda: "changed-code")  # a source file changed
    catalog.rows("models")
    assert calls and len(list(tmp_path.glob("catalog-*.json"))) == 1  # the stale one is gone


def test_the_fingerprint_follows_the_source_files():
    assert catalog.fingerprint() == catalog.fingerprint()
    assert len(catalog.fingerprint()) == 24


def test_a_process_that_imported_a_registry_lists_it_live(cli):
    from tests.fake_experiments import registered

    with registered("zz-listed-live"):
        result = cli("list", "experiments")
    assert result.exit_code == 0 and "zz-listed-live" in result.stdout
