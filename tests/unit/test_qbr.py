"""Pure QBR building: sections, proxies, scorecard, narratives, rendering."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from domain.narrative import NarrativeOutput, render_template
from domain.qbr import (
    ContractInfo,
    FeatureBenchmark,
    FeatureUse,
    QbrData,
    ScorePoint,
    apply_narratives,
    build_qbr,
    narrative_facts,
    qbr_sections,
    render_qbr_markdown,
)

AS_OF = datetime(2026, 10, 1, tzinfo=UTC)


def data(**over: object) -> QbrData:
    base = QbrData(
        account_id="acme",
        account_name="Acme Corp",
        quarter_label="2026-Q4",
        as_of=AS_OF,
        period_start=AS_OF - timedelta(days=90),
        contract=ContractInfo(
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
            arr=60000,
            seats_purchased=50,
            price_per_seat=1200,
            licensed_modules=["core", "automation"],
        ),
        score_history=[
            ScorePoint(as_of=AS_OF - timedelta(days=95), score=48, band="AMBER"),
            ScorePoint(as_of=AS_OF - timedelta(days=40), score=40, band="RED"),
            ScorePoint(as_of=AS_OF - timedelta(days=1), score=72, band="GREEN"),
        ],
        drivers=["seat use rose from 30% to 92%"],
        active_users=46,
        active_users_prev=30,
        seat_active_users=46,
        seat_window_days=30,
        feature_use=[
            FeatureUse(event_type="core.search", users=46, quantity=900),
            FeatureUse(event_type="automation.run", users=10, quantity=400),
            FeatureUse(event_type="api.call", users=2, quantity=10000),
        ],
        catalogue=[
            FeatureBenchmark(
                module="core", event_type="core.search", label="Search", benchmark=0.8
            ),
            FeatureBenchmark(
                module="automation",
                event_type="automation.create",
                label="Build automations",
                benchmark=0.1,
            ),
            FeatureBenchmark(
                module="automation",
                event_type="automation.run",
                label="Run automations",
                benchmark=0.2,
            ),
            FeatureBenchmark(module="api", event_type="api.call", label="API calls", benchmark=0.1),
        ],
        module_labels={"api": "API"},
        stakeholders=["Sam Ortiz (CFO, executive sponsor)"],
    )
    return base.model_copy(update=over)


def test_four_sections_with_metrics_and_template_narratives() -> None:
    doc = build_qbr(data())
    assert [s.key for s in doc.sections] == ["health", "roi", "adoption", "expansion"]
    health = doc.section("health")
    assert {m.label: m.value for m in health.metrics}["Band trend"] == "AMBER → RED → GREEN"
    assert health.facts.score_start == 48
    roi = doc.section("roi")
    assert roi.facts.hours_saved == 100 and roi.facts.value_usd == 6000
    adoption = doc.section("adoption")
    assert adoption.facts.features_tracked == 3 and adoption.facts.features_at_benchmark == 2
    assert adoption.recommendations[0].startswith(
        "Build automations: 0% of active users vs a 10% benchmark"
    )
    expansion = doc.section("expansion")
    titles = [r[0] for r in expansion.table.rows]  # type: ignore[union-attr]
    assert titles == ["API module", "Additional seats"]  # unlicensed use, 92% utilization
    assert any("Sam Ortiz" in s for s in expansion.recommendations)
    assert doc.summary.startswith(
        "Health 72/100 (GREEN) · about $6,000 of value delivered · 2/3 features at benchmark · renewal in 91 days"
    )
    assert all(
        s.narrative_generated_by == "template" and len(s.narrative) == 1 for s in doc.sections
    )


def test_model_narratives_replace_templates_and_drop_the_note() -> None:
    doc = build_qbr(data())
    model = NarrativeOutput(
        account_id="acme",
        purpose="qbr_roi_impact",
        headline="About $6,000 of value",
        paragraphs=["Acme saved 100 hours. That is 0.4x cost."],
        generated_by="model",
    )
    doc2 = apply_narratives(doc, {"qbr_roi_impact": model})
    assert doc2.section("roi").headline == "About $6,000 of value" and doc2.section(
        "health"
    ) == doc.section("health")
    # The template note is said once, at the end of the page, and only for template sections.
    assert qbr_sections(doc2)[2].note is None and qbr_sections(doc)[2].note is None
    assert qbr_sections(doc)[-1].note and qbr_sections(doc)[-1].note.count("Generated") == 1
    assert set(narrative_facts(doc)) == {"health", "roi", "adoption", "expansion"}


def test_markdown_is_readable() -> None:
    md = render_qbr_markdown(build_qbr(data(reason="pre_renewal")))
    assert md.startswith("# Acme Corp: Pre-renewal QBR 2026-Q4\n")
    for heading in (
        "## Account Health Summary",
        "## ROI & Business Impact",
        "## Feature Adoption Scorecard",
        "## Expansion & Next Steps",
        "## Assumptions",
    ):
        assert heading in md
    assert "| Feature | Module | Users | Adoption | Benchmark | Status |" in md


def test_no_data_still_builds() -> None:
    doc = build_qbr(
        QbrData(
            account_id="a",
            account_name="A",
            quarter_label="2026-Q1",
            as_of=AS_OF,
            period_start=AS_OF - timedelta(days=90),
        )
    )
    assert len(doc.sections) == 4 and doc.summary.startswith("Review of 90 days")


def test_an_unscored_account_has_no_health_score_in_the_qbr_summary() -> None:
    """'Health 51/100 (UNSCORED)' went into the summary and the digest line."""
    history = [ScorePoint(as_of=AS_OF - timedelta(days=1), score=51, band="UNSCORED")]
    doc = build_qbr(data(score_history=history))
    assert doc.summary.startswith("Health UNSCORED (too little data) · ")
    assert "51/100" not in doc.summary


def test_the_health_narrative_does_not_call_the_latest_driver_the_periods_cause() -> None:
    """The drivers compare the latest snapshot with the one before it, not the period's ends."""
    history = [
        ScorePoint(as_of=AS_OF - timedelta(days=60), score=54, band="AMBER"),
        ScorePoint(as_of=AS_OF - timedelta(days=1), score=38, band="RED"),
    ]
    drivers = ["usage trend 60 -> 75/100 (+2.5 points)"]
    health = build_qbr(data(score_history=history, drivers=drivers)).section("health")
    text = " ".join(health.narrative)
    assert "moved from 54 to 38/100 over the period (-16 points)" in text
    assert "What moved it most" not in text
    assert "Since the previous snapshot: usage trend 60 -> 75/100 (+2.5 points)." in text


def test_benchmarks_take_their_article_and_no_value_is_not_headed_as_value() -> None:
    """'against a 80% benchmark' read wrong; 'Value delivered this period' headed no value."""
    catalogue = [FeatureBenchmark(module="core", event_type="core.search", label="Search", benchmark=0.8)]  # fmt: skip
    doc = build_qbr(data(catalogue=catalogue, feature_use=[]))
    adoption = " ".join(doc.section("adoption").narrative + doc.section("adoption").recommendations)
    assert "against an 80% benchmark" in adoption and "vs an 80% benchmark" in adoption
    assert "a 80%" not in adoption
    idle = build_qbr(data(feature_use=[])).section("roi")
    assert idle.facts.hours_saved is None
    out = render_template(idle.facts)
    assert out.headline == "No value measured from product usage this period"
    assert "no value to report for this period" in out.paragraphs[0]
