"""`ghostdesk bench feedback` runs end to end on a tiny ledger (the real figures need 100k)."""

from __future__ import annotations

from ghostdesk.bench.feedback import generate_rated_replies, run_feedback_bench
from ghostdesk.core.feedback.ledger import RewardLedger


def test_the_generated_ledger_has_the_replies_asked_for(tmp_path):
    from ghostdesk.bench.feedback import _services

    services = _services(tmp_path / "home")
    try:
        made = generate_rated_replies(services.db, 250)
        assert made["replies"] == 250
        summary = RewardLedger(services.db).summary()
        assert summary.rated_replies > 150
        assert summary.weight_problems == ()
    finally:
        services.close()


def test_the_bench_reports_latency_and_dataset_figures(qapp):
    report = run_feedback_bench(replies=300, clicks=3, gui_replies=60)
    measures = dict(report.rows)
    assert measures["clicks timed"] == "3"
    assert "KTO export: records, time, peak Python memory" in measures
    assert len(report.data["gui"]["repaint_ms"]) == 3
    assert all(ms >= 0 for ms in report.data["gui"]["saved_ms"])
    assert "### Feedback" in report.to_markdown()
