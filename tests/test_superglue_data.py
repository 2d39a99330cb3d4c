"""SuperGLUE readers, validation errors, hub conversion and model-input formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archscale.eval import formats
from archscale.eval import superglue as sg
from archscale.eval.superglue_hub import official_records

FIXTURES = Path(__file__).parent / "fixtures"
GOOD = FIXTURES / "superglue"
BAD = FIXTURES / "superglue_malformed"

# official record counts (train, val, test) of the files in ../shared/data/superglue (PROVENANCE.md)
OFFICIAL_COUNTS = {"CB": (250, 56, 250), "COPA": (400, 100, 500), "RTE": (2490, 277, 3000),
                   "WiC": (5428, 638, 1400), "WSC": (554, 104, 146), "MultiRC": (456, 83, 166)}


@pytest.fixture(scope="module")
def sgroot(shared_data) -> Path:
    return shared_data / "superglue"


@pytest.mark.parametrize("task", sorted(OFFICIAL_COUNTS))
def test_shared_files_read_with_official_counts(sgroot, task):
    counts = tuple(len(sg.read_split(sgroot, task, s)) for s in sg.SPLITS)
    assert counts == OFFICIAL_COUNTS[task]


def test_shared_diagnostics_and_boolq_val(sgroot):
    assert len(sg.read_split(sgroot, "AX-b", sg.DIAGNOSTIC_SPLIT)) == 1104
    axg = sg.read_split(sgroot, "AX-g", sg.DIAGNOSTIC_SPLIT)
    assert len(sg.axg_pairs(axg)) == 178
    assert len(sg.read_split(sgroot, "BoolQ", "val")) == 3270


def test_availability_reports_missing_train(sgroot):
    assert sg.availability(sgroot, "CB") is None
    assert "BoolQ/train.jsonl" in sg.availability(sgroot, "BoolQ")  # shared data has no BoolQ train
    assert "ReCoRD" in sg.availability(sgroot, "ReCoRD")            # nor ReCoRD at all
    assert sg.availability(GOOD, "BoolQ") is None                    # the fixture fills both paths
    assert sg.availability(GOOD, "ReCoRD") is None


@pytest.mark.parametrize("task, split, line, needle", [
    ("CB", "train", 2, "bad label value 'maybe'"),
    ("CB", "val", 3, "missing field 'hypothesis'"),
    ("COPA", "train", 2, "not valid JSON"),
    ("RTE", "train", 1, "bad label value 0"),
    ("BoolQ", "train", 2, "bad label value 'true'"),
    ("WSC", "train", 1, "span2_index 9 outside"),
    ("WiC", "train", 1, "start1/end1"),
    ("MultiRC", "train", 1, "answers[1]: bad label value 2"),
    ("ReCoRD", "train", 1, "no @placeholder"),
])
def test_malformed_lines_name_file_and_line(task, split, line, needle):
    path = sg.split_path(BAD, task, split)
    with pytest.raises(sg.SuperGlueDataError) as err:
        sg.read_split(BAD, task, split)
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert needle in str(err.value)


def test_unlabelled_test_split_is_accepted_but_labelled_splits_need_labels(tmp_path):
    rec = {"premise": "p", "hypothesis": "h", "idx": 0}
    (tmp_path / "RTE").mkdir()
    for split in ("test", "val"):
        (tmp_path / "RTE" / f"{split}.jsonl").write_text(json.dumps(rec) + "\n")
    assert sg.read_split(tmp_path, "RTE", "test") == [rec]
    with pytest.raises(sg.SuperGlueDataError, match=r"val.jsonl:1: missing field 'label'"):
        sg.read_split(tmp_path, "RTE", "val")


def test_missing_folder_offline_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(sg.SuperGlueMissing) as err:
        sg.ensure_task(tmp_path, "CB")
    assert str(tmp_path / "CB") in str(err.value) and "train.jsonl" in str(err.value)
    assert "HF_HUB_OFFLINE" in str(err.value)


# hub rows as `datasets.load_dataset("super_glue", config)` yields them (class indices, -1 on test)
HUB_CB = {"train": [{"premise": "It rained.", "hypothesis": "It is wet", "idx": 0, "label": 0},
                    {"premise": "It rained.", "hypothesis": "It is dry", "idx": 1, "label": 1}],
          "validation": [{"premise": "Sun.", "hypothesis": "Warm", "idx": 0, "label": 2}],
          "test": [{"premise": "Snow.", "hypothesis": "Cold", "idx": 0, "label": -1}]}


def test_ensure_task_writes_official_layout_from_hub_rows(tmp_path):
    folder = sg.ensure_task(tmp_path, "CB", load_dataset=lambda name, cfg: HUB_CB)
    assert folder == tmp_path / "CB"
    train = sg.read_split(tmp_path, "CB", "train")
    assert [r["label"] for r in train] == ["entailment", "contradiction"]
    assert sg.read_split(tmp_path, "CB", "val")[0]["label"] == "neutral"
    assert "label" not in sg.read_split(tmp_path, "CB", "test")[0]
    assert sg.ensure_task(tmp_path, "CB", use_hub=False) == folder  # filled folders are left alone


def test_hub_multirc_rows_regroup_into_passages():
    rows = [{"paragraph": "P0", "question": "Q0", "answer": a, "idx": {"paragraph": 0, "question": 0, "answer": i},
             "label": lab} for i, (a, lab) in enumerate([("yes", 1), ("no", 0)])]
    rows.append({"paragraph": "P0", "question": "Q1", "answer": "x",
                 "idx": {"paragraph": 0, "question": 1, "answer": 2}, "label": 0})
    recs = official_records("MultiRC", rows, labelled=True)
    assert len(recs) == 1
    qs = recs[0]["passage"]["questions"]
    assert [len(q["answers"]) for q in qs] == [2, 1]
    sg.validate_record("MultiRC", recs[0], True, "hub")


def test_hub_record_rows_get_inclusive_entity_offsets():
    text = "Ada met Bob in Rome."
    row = {"passage": text, "query": "@placeholder met Bob.", "entities": ["Ada", "Bob", "Rome"],
           "entity_spans": {"text": ["Ada", "Bob", "Rome"], "start": [0, 8, 15], "end": [3, 11, 19]},
           "answers": ["Ada"], "idx": {"passage": 0, "query": 0}}
    rec = official_records("ReCoRD", [row], labelled=True)[0]
    sg.validate_record("ReCoRD", rec, True, "hub")
    assert formats.record_candidates(rec)[1] == ["Ada", "Bob", "Rome"]
    assert rec["qas"][0]["answers"] == [{"start": 0, "end": 2, "text": "Ada"}]


def test_record_fixture_formats():
    recs = sg.read_split(GOOD, "ReCoRD", "train")
    passage, cands = formats.record_candidates(recs[1])
    assert "@highlight" not in passage and "- Marie Curie was the first" in passage
    assert cands[:3] == ["Marie Curie", "Nobel Prize", "Physics"]
    choice = formats.classification("ReCoRD", recs[1])[1]
    assert [choice.texts[i] for i in choice.gold] == ["Pierre Curie", "Henri Becquerel"]
    assert choice.options[choice.gold[0]][0].startswith("Pierre Curie shared the 1903 prize")
    t2t = formats.text_to_text("ReCoRD", recs[1])[1]
    assert (t2t.source.startswith("record query: @placeholder shared")
            and t2t.targets == ("Pierre Curie", "Henri Becquerel"))
    test = sg.read_split(GOOD, "ReCoRD", "test")
    assert formats.classification("ReCoRD", test[0])[0].gold == ()


def test_boolq_fixture_formats():
    rec = sg.read_split(GOOD, "BoolQ", "train")[1]
    (pair,) = formats.classification("BoolQ", rec)
    assert pair.text_a == "can penguins fly" and pair.label == 0
    (t2t,) = formats.text_to_text("BoolQ", rec)
    assert t2t.targets == ("False",) and t2t.source.startswith("boolq question: can penguins fly passage:")


def test_wic_and_wsc_spans_cover_the_marked_words():
    wic = {"word": "bank", "sentence1": "The bank was closed.", "sentence2": "We sat on the river bank.",
           "start1": 4, "end1": 8, "start2": 20, "end2": 24, "label": False, "idx": 0}
    (pair,) = formats.classification("WiC", wic)
    texts = (pair.text_a, pair.text_b)
    assert [texts[seg][s:e] for seg, s, e in pair.spans] == ["bank", "bank"]
    wsc = {"text": "The trophy did not fit in the suitcase because it was too big.",
           "target": {"span1_index": 0, "span1_text": "The trophy", "span2_index": 9, "span2_text": "it"},
           "label": True, "idx": 3}
    (pair,) = formats.classification("WSC", wsc)
    assert [pair.text_a[s:e] for _, s, e in pair.spans] == ["The trophy", "it"]
    (t2t,) = formats.text_to_text("WSC", wsc)
    assert "because *it* was" in t2t.source and t2t.targets == ("True",)


def test_shared_multirc_units_grouped_by_question(sgroot):
    val = sg.read_split(sgroot, "MultiRC", "val")
    units = formats.examples("MultiRC", val, "encoder")
    assert len(units) == 4848 and len({u.group for u in units}) == 953
    assert len(formats.examples("MultiRC", val, "encdec")) == 4848


@pytest.mark.parametrize("task", ["CB", "COPA", "RTE", "WiC", "WSC", "AX-b", "AX-g"])
def test_every_kind_formats_shared_records(sgroot, task):
    split = sg.DIAGNOSTIC_SPLIT if task in sg.DIAGNOSTICS else "val"
    recs = sg.read_split(sgroot, task, split)
    for kind in formats.KINDS:
        units = formats.examples(task, recs, kind)
        assert len(units) == len(recs)
    words = sg.spec(task).label_words
    t2t = formats.examples(task, recs, "encdec")
    assert all(u.targets == (words[u.label],) for u in t2t)
    if task in sg.DIAGNOSTICS:
        assert all(u.source.startswith("rte sentence1: ") for u in t2t)  # scored by the RTE model
    if task == "COPA":
        assert all(isinstance(u, formats.Choices) and len(u.options) == 2
                   for u in formats.examples(task, recs, "decoder"))


def test_label_index_is_type_strict():
    assert sg.label_index("BoolQ", True) == 1
    with pytest.raises(ValueError):
        sg.label_index("BoolQ", 1)


def test_manifest_lists_available_tasks_with_hashes(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "manifest.json"
    assert sg.main(["--root", str(GOOD), "--tasks", "BoolQ", "ReCoRD", "CB", "--out", str(out)]) == 0
    got = json.loads(out.read_text())["tasks"]
    assert got["BoolQ"]["available"] and set(got["BoolQ"]["files"]) == {"train.jsonl", "val.jsonl"}
    assert len(got["ReCoRD"]["files"]["val.jsonl"]) == 64
    assert not got["CB"]["available"] and str(GOOD / "CB") in got["CB"]["reason"] and got["CB"]["files"] == {}
