"""The code location at a glance, compared with a committed snapshot: every asset key with its group, kinds, owners
and automation condition, and its checks with their blocking flag. A change to any of them shows up as a diff of
`snapshots/definitions.txt` in review.

Regenerate after a deliberate change (a new asset, a renamed check, another owner):

    .venv/bin/python -m customer_pipeline_tests.test_definitions_snapshot
"""

import difflib
import re
from pathlib import Path

import pytest
from dagster import AssetKey

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"
REGENERATE = ".venv/bin/python -m customer_pipeline_tests.test_definitions_snapshot"
# a deployment that publishes (the publish asset exists only then); the URL is only read, never connected to
ENV = {"CUSTOMER_PIPELINE_PG_URL": "postgresql+psycopg2://snapshot@127.0.0.1:5432/never_connected",
       "CUSTOMER_PIPELINE_AUTOMATION": "running"}


def render() -> str:
    """One line per asset (key, group, kinds, owners, automation label), one indented line per check."""
    from customer_pipeline.definitions import defs

    graph = defs().resolve_asset_graph()
    lines = [f"# {REGENERATE}"]
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        condition = node.automation_condition
        label = (condition.get_label() or condition.name) if condition else "none (schedules and sensors)"
        lines.append(f"{key.to_user_string()}  group={node.group_name}  kinds={','.join(sorted(node.kinds))}  "
                     f"owners={','.join(node.owners)}  automation={label}")
        for check in sorted(graph.get_check_keys_for_assets({key}), key=lambda c: c.name):
            blocking = "blocking" if graph.get_check_spec(check).blocking else "non-blocking"
            lines.append(f"    check {check.name}  {blocking}")
    return "\n".join(lines) + "\n"


def test_definitions_match_the_snapshot(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    current = render()
    committed = SNAPSHOT.read_text() if SNAPSHOT.is_file() else ""
    diff = "".join(difflib.unified_diff(committed.splitlines(True), current.splitlines(True),
                                        "snapshots/definitions.txt (committed)", "definitions now", n=0))
    assert current == committed, (
        f"the definitions changed; if that is intended, regenerate the snapshot with `{REGENERATE}` and commit it:\n"
        + diff[:6000])


def test_every_asset_has_owners_and_every_downstream_asset_an_automation_condition(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    from customer_pipeline.definitions import defs

    graph = defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert "team:data-engineering" in node.owners and len(node.owners) >= 2, key
        unautomated = node.group_name == "raw" or node.tags.get("automation") == "manual"
        assert (node.automation_condition is None) == unautomated, key
        refs = node.metadata["dagster/code_references"].code_references
        assert refs and all(Path(r.file_path).is_file() and r.line_number for r in refs), key


def test_code_references_point_at_the_repository_when_its_url_is_set(monkeypatch):
    monkeypatch.setenv("CUSTOMER_PIPELINE_GIT_URL", "https://github.com/example/customer-pipeline")
    monkeypatch.setenv("CUSTOMER_PIPELINE_GIT_BRANCH", "release")
    from customer_pipeline.definitions import defs

    node = defs().resolve_asset_graph().get(AssetKey(["gold", "customer_rfm"]))
    [ref] = node.metadata["dagster/code_references"].code_references
    assert re.fullmatch(r"https://github.com/example/customer-pipeline/tree/release/"
                        r"customer_pipeline/defs/marts/assets.py#L\d+", ref.url), ref.url


if __name__ == "__main__":
    with pytest.MonkeyPatch.context() as env:
        for name, value in ENV.items():
            env.setenv(name, value)
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(render())
    print(f"wrote {SNAPSHOT}")
