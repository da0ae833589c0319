"""The decision after Phase 1 and the cost report: each branch of the tree on a simulated monitoring database built to
reach it, and the two report notebooks executed by papermill on a hand-made run folder (its config read, its log and
ledger read, the run itself never written except RUN/report/)."""
import json
import papermill as pm
import pytest
from conftest import ROOT
from modforge_nb.costs import sample_run
from modforge_nb.decision import SCENARIOS, SIM_END, decide, read_log, simulate_log

NBS = ROOT / "nbs" / "phase2"


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_each_branch(tmp_path, scenario):
    "A simulated log built for a branch reaches it with the default bars."
    got = decide(read_log(simulate_log(tmp_path / "requests.sqlite", scenario, seed=1)))
    assert got["branch"] == SCENARIOS[scenario]["branch"], got["why"]


def run_nb(name, out, **params):
    pm.execute_notebook(str(NBS / name), str(out), parameters=params, kernel_name="python3", cwd=str(ROOT), progress_bar=False)


@pytest.fixture
def run(tmp_path):
    "A hand-made run folder (manifest, ledger, config) whose served system logged the `iterate` scenario."
    r = sample_run(tmp_path / "runs" / "sample")
    simulate_log(r / "serve" / "requests.sqlite", "iterate")
    return r


def test_decision_report_on_a_run(run, tmp_path):
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    run_nb("decision_report.ipynb", tmp_path / "d.ipynb", run_dir=str(run), as_of=SIM_END)
    got = json.loads((run / "report" / "decision.json").read_text())
    assert (got["branch"], got["bar"]) == ("iterate", "decision.max_down_share"), got["why"]
    assert {p.name for p in (run / "report").iterdir()} == {"decision.json", "decision.md", "decision.png"}
    assert sorted(p.relative_to(run) for p in run.rglob("*") if "report" not in p.parts) == before   # the log is read from a copy
    # the run config's bars, changed for this report only: thumbs down at 40% pass a 50% bar, and every Phase 2 domain is asked for
    run_nb("decision_report.ipynb", tmp_path / "d2.ipynb", run_dir=str(run), as_of=SIM_END, out_dir=str(tmp_path / "o"),
           overrides=["decision.max_down_share=0.5"])
    assert json.loads((tmp_path / "o" / "decision.json").read_text())["branch"] == "build_phase2"
    # decided now, months after the simulated traffic ended: too little use
    run_nb("decision_report.ipynb", tmp_path / "d3.ipynb", run_dir=str(run), out_dir=str(tmp_path / "now"))
    assert json.loads((tmp_path / "now" / "decision.json").read_text())["branch"] == "stop"


def test_cost_report_on_a_run(run, tmp_path):
    run_nb("cost_report.ipynb", tmp_path / "c.ipynb", run_dir=str(run), overrides=["costs.cpu_usd_per_hour=3", "costs.estimates.3x.usd=25"])
    got = json.loads((run / "report" / "costs.json").read_text())
    rows = {r["step"]: r for r in got["rows"]}
    assert rows["code"]["est_usd"] == 25 and rows["code"]["est_source"] == "configured" and rows["6C"]["est_source"] == "placeholder"
    assert got["totals"]["compute_usd"] == pytest.approx(3 * 40 / 60)           # 40 min of CPU steps at $3 an hour
    assert got["totals"]["teacher_usd"] == pytest.approx(0.0064)
    assert "configured estimate USD" in (run / "report" / "costs.md").read_text()


@pytest.mark.parametrize("name", ["decision_report.ipynb", "cost_report.ipynb"])
def test_reports_refuse_a_folder_that_is_no_run(tmp_path, name):
    with pytest.raises(pm.PapermillExecutionError) as e:
        run_nb(name, tmp_path / "x.ipynb", run_dir=str(tmp_path))
    assert "is not a run folder (no manifest.json)" in str(e.value)


@pytest.mark.parametrize("name", ["decision_report.ipynb", "cost_report.ipynb"])
def test_reports_without_a_run(tmp_path, name):
    "Without a run: a simulated log / a sample run, in a temp folder (what nbdev_test executes)."
    run_nb(name, tmp_path / "x.ipynb")
    text = (tmp_path / "x.ipynb").read_text()
    assert "SIMULATED" in text or "SAMPLE run" in text
