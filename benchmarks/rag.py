"""RAG benchmark: ingest throughput, query latency at 10k chunks, and recall@5 of vector-only vs hybrid retrieval.

    .venv/bin/python benchmarks/rag.py [--runs 3] [--chunks 10000] [--queries 40] [--full-embed]

1. Ingest: a generated 100-page PDF (fpdf2) through `ingest_document` with the packaged all-MiniLM-L6-v2,
   median over --runs; extraction+chunking alone is timed too, so the embedding share is visible.
2. Query latency: `search` over an index of --chunks chunks (generated text). Embedding 10k chunks takes many
   minutes on 2 shared cores, so by default the index holds real embeddings of 500 chunks plus noisy copies
   of them for the rest (query embeddings are always real); --full-embed embeds every chunk instead.
3. Recall@5 and MRR on benchmarks/rag_corpus.py (120 generated towns, one per PDF page, 90 questions;
   generated text, no external data, CC0), for vector-only, BM25-only and hybrid (RRF) retrieval.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import rag_corpus  # noqa: E402
from fpdf import FPDF  # noqa: E402
from rag_corpus import words  # noqa: E402

from backend.core.settings import Settings  # noqa: E402
from backend.storage.documents import INDEXED  # noqa: E402
from backend.storage.extract import chunk_pages, extract  # noqa: E402
from backend.storage.ingest import ingest_document  # noqa: E402
from backend.storage.vectors import RagStore, close_rag_store, get_rag_store  # noqa: E402
from backend.tools.rag import search  # noqa: E402

PDF_PAGES = 100
WORDS_PER_PAGE = 260
REAL_VECTORS = 300
NOISE = 0.15
VOCAB = words(
    "river harbour ledger council grain salt copper festival winter bridge mill market weaver lantern "
    "tide orchard quarry barley ferry chapel granary tannery smithy wharf meadow beacon cistern vineyard "
    "archive revenue shipment invoice tariff harvest drought census charter treaty survey audit forecast "
    "inventory"
)


def settings_in(path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=path, jwt_secret="x" * 48, llm_providers=["fake"])  # type: ignore[call-arg,arg-type]


def make_lexicon(size: int = 4000) -> tuple[list[str], list[float]]:
    """Words with Zipf frequencies (rank r has weight 1/r), so postings lengths look like real text."""
    rng = random.Random(0)
    lexicon = list(VOCAB)
    seen = set(lexicon)
    while len(lexicon) < size:
        word = "".join(rng.choice(rag_corpus.SYLLABLES) for _ in range(rng.choice((2, 3))))
        if word not in seen:
            seen.add(word)
            lexicon.append(word)
    cumulative, total = [], 0.0
    for rank in range(1, size + 1):
        total += 1.0 / rank
        cumulative.append(total)
    return lexicon, cumulative


LEXICON, CUMULATIVE = make_lexicon()


def prose(rng: random.Random, n_words: int) -> str:
    picks = rng.choices(LEXICON, cum_weights=CUMULATIVE, k=n_words)
    sentences = [" ".join(picks[i : i + 12]).capitalize() + "." for i in range(0, n_words, 12)]
    return " ".join(sentences)


def write_pdf(path: Path, pages: list[str]) -> Path:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 5, text)
    pdf.output(str(path))
    return path


def bench_ingest(tmp: Path, runs: int) -> None:
    rng = random.Random(1)
    pdf = write_pdf(tmp / "hundred.pdf", [prose(rng, WORDS_PER_PAGE) for _ in range(PDF_PAGES)])
    settings = settings_in(tmp / "ingest")
    get_rag_store(settings=settings).embeddings.embed_query("warm up")  # model load is not ingest time
    extract_s, total_s, chunks = [], [], 0
    for run in range(runs):
        t0 = time.perf_counter()
        doc = extract(pdf, name="hundred.pdf", max_pages=settings.rag_max_pages)
        chunk_pages(doc.pages, chunk_size=settings.rag_chunk_size, chunk_overlap=settings.rag_chunk_overlap)
        extract_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        report = ingest_document(settings=settings, user_id="bench", file_id=f"run{run}", path=pdf, name="hundred.pdf")
        total_s.append(time.perf_counter() - t0)
        chunks = report.chunks
    ext, tot = statistics.median(extract_s), statistics.median(total_s)
    print(f"ingest: {PDF_PAGES}-page PDF, {chunks} chunks of <= {settings.rag_chunk_size} chars, median of {runs} runs")
    print(f"  extract+chunk only : {ext:6.2f} s  = {PDF_PAGES / ext:7.1f} pages/s")
    print(f"  full ingest        : {tot:6.2f} s  = {PDF_PAGES / tot:7.1f} pages/s  ({chunks / tot:.1f} chunks/s)")
    print(f"  embedding + index share of ingest time: {100 * (tot - ext) / tot:.0f}%")
    close_rag_store(settings=settings)


def build_big_index(store: RagStore, *, chunks: int, full_embed: bool) -> float:
    rng = random.Random(2)
    texts = [prose(rng, 96) for _ in range(chunks)]
    t0 = time.perf_counter()
    if full_embed:
        vectors = np.asarray(store.embeddings.embed_documents(texts), dtype=np.float32)
    else:
        base = np.asarray(store.embeddings.embed_documents(texts[:REAL_VECTORS]), dtype=np.float32)
        noise = np.random.default_rng(3).normal(0, NOISE / np.sqrt(base.shape[1]), (chunks, base.shape[1]))
        vectors = base[np.arange(chunks) % REAL_VECTORS] + noise.astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    per_doc = 500
    for d in range(0, chunks, per_doc):
        part = [(None, t) for t in texts[d : d + per_doc]]
        rows = store.record.begin_document(
            user_id="big",
            file_id=f"doc{d // per_doc}",
            name=f"doc{d // per_doc}.txt",
            kind="text",
            pages=1,
            chunks=part,
        )
        store.index.upsert(user_id="big", rows=rows, embeddings=vectors[d : d + per_doc].tolist())
        store.record.set_status(user_id="big", file_id=f"doc{d // per_doc}", status=INDEXED)
    return time.perf_counter() - t0


def bench_queries(tmp: Path, *, chunks: int, queries: int, full_embed: bool) -> None:
    settings = settings_in(tmp / "big")
    store = get_rag_store(settings=settings)
    build_s = build_big_index(store, chunks=chunks, full_embed=full_embed)
    kind = "all real embeddings" if full_embed else f"{REAL_VECTORS} real embeddings + noisy copies"
    print(f"\nquery latency: {store.index.count(user_id='big')} chunks in Chroma ({kind}; built in {build_s:.0f} s)")
    rng = random.Random(4)
    qs = [" ".join(rng.sample(LEXICON[:500], 4)) for _ in range(queries)]
    t0 = time.perf_counter()
    search(settings=settings, user_id="big", query="cold start", mode="bm25")
    print(
        f"  first query after a change (builds BM25 over {chunks} chunks): {1000 * (time.perf_counter() - t0):.0f} ms"
    )
    modes = ("vector", "bm25", "hybrid")
    times: dict[str, list[float]] = {mode: [] for mode in (*modes, "embed")}
    for i, q in enumerate(qs):  # modes interleaved per query, rotating, so load swings hit all alike
        for mode in modes[i % 3 :] + modes[: i % 3]:
            t0 = time.perf_counter()
            search(settings=settings, user_id="big", query=q, k=5, mode=mode)
            times[mode].append(1000 * (time.perf_counter() - t0))
        t0 = time.perf_counter()
        store.embeddings.embed_query(q)
        times["embed"].append(1000 * (time.perf_counter() - t0))
    results = {}
    for mode in modes:
        ordered = sorted(times[mode])
        results[mode] = (statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))])
    embed_ms = times["embed"]
    for mode, (p50, p95) in results.items():
        print(f"  {mode:<7} k=5: p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   ({queries} queries)")
    print(f"  query embedding alone (part of vector and hybrid): p50 {statistics.median(embed_ms):6.1f} ms")
    print(f"  hybrid / vector-only p50: {results['hybrid'][0] / results['vector'][0]:.2f}x")
    close_rag_store(settings=settings)


def bench_recall(tmp: Path) -> None:
    pages, questions = rag_corpus.build()
    settings = settings_in(tmp / "recall")
    pdf = write_pdf(tmp / "towns.pdf", pages)
    ingest_document(settings=settings, user_id="r", file_id="towns", path=pdf, name="towns.pdf")
    kinds = ["name", "export", "paraphrase"]
    print(
        f"\nrecall@5 / MRR@5: {len(pages)} generated town pages, {len(questions)} questions "
        f"({', '.join(f'{sum(q.kind == k for q in questions)} {k}' for k in kinds)})"
    )
    print(f"  {'mode':<7} {'all':>12} " + " ".join(f"{k:>12}" for k in kinds))
    recall_all = {}
    for mode in ("vector", "bm25", "hybrid"):
        found: dict[str, list[float]] = {k: [] for k in kinds}
        rr: list[float] = []
        for q in questions:
            hits = [h.page for h in search(settings=settings, user_id="r", query=q.text, k=5, mode=mode)]  # type: ignore[arg-type]
            found[q.kind].append(1.0 if q.page in hits else 0.0)
            rr.append(1.0 / (hits.index(q.page) + 1) if q.page in hits else 0.0)
        every = [x for k in kinds for x in found[k]]
        recall_all[mode] = statistics.mean(every)
        cells = " ".join(f"{statistics.mean(found[k]):>12.2f}" for k in kinds)
        print(f"  {mode:<7} {recall_all[mode]:>5.2f} / {statistics.mean(rr):.2f} {cells}")
    print(
        f"  hybrid vs vector-only recall@5: {recall_all['hybrid']:.2f} vs {recall_all['vector']:.2f} "
        f"({recall_all['hybrid'] / recall_all['vector']:.2f}x)"
    )
    close_rag_store(settings=settings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--full-embed", action="store_true", help="embed every chunk of the big index for real")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory() as tmp:
        bench_ingest(Path(tmp), args.runs)
        bench_queries(Path(tmp), chunks=args.chunks, queries=args.queries, full_embed=args.full_embed)
        bench_recall(Path(tmp))
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
