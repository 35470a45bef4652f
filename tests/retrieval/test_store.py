"""Collections in the store and queries through the per-worker index, on SQLite and on PostgreSQL,
embedded with the real MiniLM model over the shipped lesson rubrics and prompts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lib.errors import InvalidRequestError
from lib.retrieval.service import Retrieval, check_filter
from lib.retrieval.store import CollectionConflictError, CollectionNotFoundError, CollectionStore
from lib.store import Store
from tests.retrieval.conftest import Embedder, corpus


@pytest.fixture
def retrieval(database_url: str) -> Iterator[Retrieval]:
    store = Store(database_url)
    store.migrate()
    yield Retrieval(CollectionStore(store.engine))
    store.dispose()


@pytest.fixture
def lessons(retrieval: Retrieval, minilm: Embedder) -> Retrieval:
    coll, created = retrieval.store.create("lessons", "local", 200, 40)
    assert created
    for doc_id, text, meta in corpus():
        retrieval.store.upsert(coll, doc_id, text, meta, minilm)
    return retrieval


QUESTIONS = [
    (
        "u3l13",
        "Which sprites have properties updated inside the draw loop?",
        "Modularity - Sprites and Sprite Properties",
    ),
    (
        "u3l13",
        "Are shapes, sprites and text placed on the screen with the coordinate system and moving?",
        "Position and Movement",
    ),
    (
        "cfe",
        "Are elements hidden behind others because the program is sequenced in the wrong order?",
        "Program Development - Program Sequence",
    ),
]


@pytest.mark.parametrize(("lesson", "question", "concept"), QUESTIONS)
def test_a_key_concept_question_finds_its_rubric_row_first(
    lessons: Retrieval, minilm: Embedder, lesson: str, question: str, concept: str
) -> None:
    hits = lessons.query_text("lessons", question, 5, minilm, {"lesson": lesson})
    assert hits[0].doc_id == f"{lesson}/{concept}", [h.doc_id for h in hits]
    assert hits[0].metadata["key_concept"] == concept
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_offsets_point_at_the_document_text(lessons: Retrieval, minilm: Embedder) -> None:
    texts = {doc_id: text for doc_id, text, _ in corpus()}
    hits = lessons.query_text("lessons", "what the lesson asks students to build", 10, minilm)
    assert hits
    for hit in hits:
        assert texts[hit.doc_id][hit.start : hit.end] == hit.text


def test_reingest_is_idempotent_and_embeds_only_changed_chunks(
    retrieval: Retrieval, minilm: Embedder
) -> None:
    calls: list[int] = []

    def counting(model: str, texts: list[str]) -> list[list[float]]:
        calls.append(len(texts))
        return minilm(model, texts)

    coll, _ = retrieval.store.create("reingest", "local", 32, 8)
    text = " ".join(f"Sentence number {i} talks about sprite number {i}." for i in range(40))
    first = retrieval.store.upsert(coll, "doc", text, {}, counting)
    assert first.chunks == first.embedded > 3 and not first.unchanged
    again = retrieval.store.upsert(coll, "doc", text, {}, counting)
    assert (again.embedded, again.unchanged, again.chunks) == (0, True, first.chunks)
    assert len(calls) == 1
    edited = text + " One more sentence at the end."
    third = retrieval.store.upsert(coll, "doc", edited, {}, counting)
    assert 1 <= third.embedded < first.chunks // 2  # the untouched chunks keep their vectors
    hits = retrieval.query_text("reingest", "One more sentence at the end", 3, counting)
    assert edited[hits[0].start : hits[0].end] == hits[0].text and "One more" in hits[0].text
    assert len(retrieval.store.chunk_ids(coll)) == third.chunks  # no stale rows left behind


def test_delete_document_and_collection(lessons: Retrieval, minilm: Embedder) -> None:
    question = "Which sprites have properties updated inside the draw loop?"
    target = "u3l13/Modularity - Sprites and Sprite Properties"
    assert target in [h.doc_id for h in lessons.query_text("lessons", question, 3, minilm)]
    coll = lessons.store.get("lessons")
    lessons.store.delete_document(coll, target)
    assert target not in [h.doc_id for h in lessons.query_text("lessons", question, 20, minilm)]
    with pytest.raises(CollectionNotFoundError):
        lessons.store.delete_document(coll, target)
    lessons.store.delete("lessons")
    with pytest.raises(CollectionNotFoundError):
        lessons.query_text("lessons", question, 3, minilm)


def test_filters_keep_only_matching_documents(lessons: Retrieval, minilm: Embedder) -> None:
    hits = lessons.query_text("lessons", "sprites", 50, minilm, {"lesson": "cfe"})
    assert hits and {h.metadata["lesson"] for h in hits} == {"cfe"}
    prompts = lessons.query_text("lessons", "sprites", 50, minilm, {"kind": ["prompt"]})
    assert {h.doc_id for h in prompts} == {"u3l13/prompt", "cfe/prompt"}
    assert lessons.query_text("lessons", "sprites", 5, minilm, {"lesson": "nope"}) == []
    with pytest.raises(InvalidRequestError):
        check_filter({"lesson": {"nested": 1}})
    with pytest.raises(InvalidRequestError):
        check_filter(["lesson"])


def test_a_second_worker_sees_writes_through_the_shared_store(database_url: str, minilm: Embedder) -> None:
    """Two Retrieval objects on one database stand for two replicas: each follows the other's writes."""
    stores = [Store(database_url), Store(database_url)]
    stores[0].migrate()
    one, two = (Retrieval(CollectionStore(s.engine)) for s in stores)
    coll, _ = one.store.create("shared", "local", 200, 40)
    one.store.upsert(coll, "a", "Sprites move with the counter pattern.", {}, minilm)
    assert [h.doc_id for h in two.query_text("shared", "counter pattern", 5, minilm)] == ["a"]
    one.store.upsert(coll, "b", "Text is drawn on the screen with the text command.", {}, minilm)
    assert [h.doc_id for h in two.query_text("shared", "draw text on screen", 1, minilm)] == ["b"]
    one.store.delete_document(one.store.get("shared"), "a")
    assert [h.doc_id for h in two.query_text("shared", "counter pattern", 5, minilm)] == ["b"]
    for s in stores:
        s.dispose()


def test_create_rules(retrieval: Retrieval) -> None:
    coll, created = retrieval.store.create("c1", "local", 200, 40)
    assert created and coll.dimensions is None
    assert retrieval.store.create("c1", "local", 200, 40)[1] is False
    with pytest.raises(CollectionConflictError):
        retrieval.store.create("c1", "local", 100, 40)
    with pytest.raises(InvalidRequestError):
        retrieval.store.create("bad name!", "local", 200, 40)
    with pytest.raises(InvalidRequestError):
        retrieval.store.upsert(coll, "nul", "a\x00b", {}, lambda m, t: [[1.0]])
    assert retrieval.query("c1", [1.0, 0.0], 3) == []


def test_index_builds_run_on_the_runner_thread_pool(database_url: str, minilm: Embedder) -> None:
    """Under gevent the build goes to an OS thread; forced here, the results are the same."""
    from lib.concurrency import OSThreadRunner

    store = Store(database_url)
    store.migrate()
    runner = OSThreadRunner(1, force_threads=True)
    offloaded = Retrieval(CollectionStore(store.engine), runner=runner)
    coll, _ = offloaded.store.create("offloaded", "local", 200, 40)
    offloaded.store.upsert(coll, "a", "Sprites move with the counter pattern.", {}, minilm)
    assert [h.doc_id for h in offloaded.query_text("offloaded", "counter pattern", 3, minilm)] == ["a"]
    assert runner._pool is not None  # the add went through the runner's own OS-thread pool
    runner.close()
    store.dispose()
