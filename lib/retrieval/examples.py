"""Few-shot examples chosen by similarity: the graded programs nearest to the student's program.

An examples collection holds one document per graded example: its text is the example program and its
``response`` metadata the graded answer (TSV or JSON, as ``/assessment``'s ``examples`` takes it).  The
query is the student's program with comments removed, so comments (or text planted in them) do not
decide which examples the model sees; documents are compared by their best chunk.  A long example
program spans several chunks; its full text is stitched back from them (``CollectionStore.document_text``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from lib.assessment.comments import remove_comments
from lib.errors import InvalidRequestError
from lib.retrieval.store import Embed

if TYPE_CHECKING:  # the caller passes it in; importing it here would load numpy at app start
    from lib.retrieval.service import Retrieval

#: Chunks fetched per example wanted, so that k distinct documents are found when programs span chunks.
_OVERSAMPLE = 4
MAX_EXAMPLES = 10


def nearest_examples(
    retrieval: Retrieval, collection: str, code: str, k: int, embed: Embed
) -> list[tuple[str, str]]:
    """``(example_code, example_response)`` of the ``k`` graded examples nearest to ``code``, best first."""
    return [
        (text, response) for _, text, response in nearest_example_docs(retrieval, collection, code, k, embed)
    ]


def nearest_example_docs(
    retrieval: Retrieval,
    collection: str,
    code: str,
    k: int,
    embed: Embed,
    *,
    exclude: Collection[str] = (),
) -> list[tuple[str, str, str]]:
    """``(document_id, example_code, example_response)`` of the ``k`` nearest graded examples, best
    first, never one whose id is in ``exclude`` (the rubric tester leaves a student out of its own
    examples when they come from the dataset being measured)."""
    if not 1 <= k <= MAX_EXAMPLES:
        raise InvalidRequestError(f"examples-count must be 1..{MAX_EXAMPLES}", field="examples-count")
    query = remove_comments(code).strip() or code.strip()
    if not query:
        return []
    hits = retrieval.query_text(collection, query, (k + len(exclude)) * _OVERSAMPLE, embed)
    coll = retrieval.store.get(collection)
    chosen: list[tuple[str, str, str]] = []
    seen: set[str] = set(exclude)
    for hit in hits:
        response = hit.metadata.get("response")
        if hit.doc_id in seen or not isinstance(response, str):
            continue
        seen.add(hit.doc_id)
        chosen.append((hit.doc_id, retrieval.store.document_text(coll, hit.doc_id), response))
        if len(chosen) == k:
            break
    return chosen
