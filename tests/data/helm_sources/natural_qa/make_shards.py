"""Writes the five small Natural Questions dev shards (``nq-dev-0N.jsonl.gz``) in NQ's own format.

Each example is a short made-up Wikipedia-like page: its HTML, its tokens with byte offsets,
the long-answer candidates (its paragraphs and tables) and five annotations pointing into
it by byte and token, as the real shards have them. The pages exercise what HELM's reader
does with the HTML: entities (``&amp;``, ``&#39;``, ``&nbsp;``), a literal no-break space,
links inside answers, a table as the long answer, non-ASCII text, yes/no-only examples (left
out) and annotators who agree or differ. Run it to rewrite the shards (gzip without a time
stamp, so the bytes are stable)::

    python tests/data/helm_sources/natural_qa/make_shards.py
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
# Blanks separate tokens; a no-break space (U+00A0) does not, as in the real pages.
_TOKEN = re.compile(r"<[^>]*>|[^ \t\n<]+")

# Each page: (title, question, blocks, annotations). A block is HTML whose tokens are separated
# by blanks; an annotation is (block index or None, [short answers as token texts], yes_no).
Page = tuple[str, str, list[str], list[tuple[int | None, list[str], str]]]

SHARDS: list[list[Page]] = [
    [
        ("Lake Baikal", "how deep is lake baikal", [
            "<P> <b> Lake Baikal </b> is a rift lake in <a href=\"/wiki/Siberia\"> Siberia </a> , Russia , north of "
            "the Mongolian border . It is the deepest lake in the world , with a maximum depth of 1,642 m ( 5,387 "
            "ft ) , and it holds about a fifth of the world &#39;s unfrozen fresh surface water . </P>",
            "<P> The lake is fed by more than three hundred rivers , while a single river , the Angara , drains "
            "it . </P>",
        ], [(0, ["1,642 m ( 5,387 ft )"], "NONE"), (0, ["1,642 m"], "NONE"), (None, [], "NONE"),
            (0, ["1,642 m ( 5,387 ft )"], "NONE"), (1, [], "NONE")]),
        ("Marks & Spencer", "who founded marks and spencer", [
            "<P> <b> Marks &amp; Spencer </b> is a retailer with its head office in London . It was founded in "
            "1884 by Michael Marks and Thomas Spencer in Leeds , where Marks first kept a market stall . </P>",
        ], [(0, ["Michael Marks and Thomas Spencer"], "NONE"), (0, ["Michael Marks", "Thomas Spencer"], "NONE"),
            (0, ["Michael Marks and Thomas Spencer"], "NONE"), (None, [], "NONE"), (0, [], "NONE")]),
        ("Pluto", "is pluto smaller than the moon", [
            "<P> <b> Pluto </b> is a dwarf planet in the Kuiper belt . Its diameter is about two thirds of that "
            "of the Moon . </P>",
        ], [(0, [], "YES"), (0, [], "YES"), (None, [], "NONE"), (0, [], "YES"), (None, [], "NONE")]),
        ("Penicillin", "who discovered penicillin in 1928", [
            "<P> <b> Penicillin </b> was discovered in 1928 by the Scottish physician Alexander Fleming , who "
            "noticed that a mould had killed the bacteria growing around it on a culture plate . </P>",
        ], [(0, ["Alexander Fleming"], "NONE"), (0, ["the Scottish physician Alexander Fleming"], "NONE"),
            (0, ["Alexander Fleming"], "NONE"), (0, ["Alexander Fleming"], "NONE"), (None, [], "NONE")]),
    ],
    [
        ("List of tallest buildings", "what is the tallest building in the world", [
            "<P> This list ranks completed buildings by their height to the architectural top . </P>",
            "<Table> <Tr> <Th> Rank </Th> <Th> Name </Th> <Th> Height </Th> </Tr> <Tr> <Td> 1 </Td> <Td> <a "
            "href=\"/wiki/Burj_Khalifa\"> Burj Khalifa </a> </Td> <Td> 828 m </Td> </Tr> <Tr> <Td> 2 </Td> <Td> "
            "Merdeka 118 </Td> <Td> 679 m </Td> </Tr> </Table>",
        ], [(1, ["<a href=\"/wiki/Burj_Khalifa\"> Burj Khalifa </a>"], "NONE"), (1, ["Burj Khalifa"], "NONE"),
            (0, [], "NONE"), (1, ["Burj Khalifa"], "NONE"), (None, [], "NONE")]),
        ("Édith Piaf", "what was édith piaf 's nickname", [
            "<P> <b> Édith Piaf </b> was a French singer of cabaret songs and ballads . Her stage name came from "
            "her first nickname , La Môme Piaf , « the little sparrow » , given to her by a club owner in "
            "Pigalle . </P>",
        ], [(0, ["La Môme Piaf"], "NONE"), (0, ["the little sparrow"], "NONE"), (0, ["La Môme Piaf"], "NONE"),
            (0, ["La Môme Piaf , « the little sparrow »"], "NONE"), (None, [], "NONE")]),
        ("Photosynthesis", "where does photosynthesis take place in plant cells", [
            "<P> In plants , <b> photosynthesis </b> takes place in the chloroplasts , small bodies in the cells "
            "of leaves that hold the green pigment chlorophyll . </P>",
        ], [(0, ["the chloroplasts"], "NONE"), (0, ["chloroplasts"], "NONE"), (0, ["in the chloroplasts"], "NONE"),
            (None, [], "NONE"), (0, ["the chloroplasts"], "NONE")]),
    ],
    [
        ("Carburetor", "what does a carburetor do", [
            "<P> A <b> carburetor </b> is a device that mixes air and fuel for an engine in the proportion it "
            "needs . </P>",
        ], [(0, [], "NONE"), (0, [], "NONE"), (None, [], "NONE"), (0, [], "NONE"), (0, [], "NONE")]),
        ("Great Wall of China", "how long is the great wall of china", [
            "<P> The <b> Great Wall of China </b> is a series of fortifications across the historical northern "
            "borders of ancient Chinese states . A survey completed in 2012 put the length of all its branches at "
            "21,196 km ( 13,171 mi ) . </P>",
        ], [(0, ["21,196 km ( 13,171 mi )"], "NONE"), (0, ["21,196 km"], "NONE"), (None, [], "NONE"),
            (0, ["21,196 km ( 13,171 mi )"], "NONE"), (0, ["21,196 km"], "NONE")]),
        ("Summer Olympic Games", "when were the first modern olympic games held", [
            "<P> The first modern <b> Olympic Games </b> were held in Athens from 6&nbsp;to 15 April 1896 , "
            "with 241 athletes from 14 nations taking part . </P>",
            "<P> They were organised by the International Olympic Committee , founded two years earlier by "
            "Pierre de Coubertin . </P>",
        ], [(0, ["6&nbsp;to 15 April 1896"], "NONE"), (0, ["1896"], "NONE"), (0, ["15 April 1896"], "NONE"),
            (1, [], "NONE"), (0, ["1896"], "NONE")]),
    ],
    [
        ("Mount Kilimanjaro", "where is mount kilimanjaro located", [
            "<P> <b> Mount Kilimanjaro </b> is a dormant volcano in northeastern Tanzania , close to the border "
            "with Kenya . At 5,895\u00a0metres it is the highest mountain in Africa . </P>",
        ], [(0, ["northeastern Tanzania"], "NONE"), (0, ["Tanzania"], "NONE"), (0, ["northeastern Tanzania"], "NONE"),
            (None, [], "NONE"), (0, ["northeastern Tanzania , close to the border with Kenya"], "NONE")]),
        ("Telephone", "who is credited with inventing the telephone", [
            "<P> <a href=\"/wiki/Alexander_Graham_Bell\"> Alexander Graham Bell </a> was granted the first "
            "United States patent for the <b> telephone </b> in 1876 , although Antonio Meucci and Elisha Gray "
            "had worked on similar devices . </P>",
        ], [(0, ["<a href=\"/wiki/Alexander_Graham_Bell\"> Alexander Graham Bell </a>"], "NONE"),
            (0, ["Alexander Graham Bell"], "NONE"), (0, ["Alexander Graham Bell", "Antonio Meucci"], "NONE"),
            (None, [], "NONE"), (0, ["Alexander Graham Bell"], "NONE")]),
    ],
    [
        ("Danube", "how many countries does the danube flow through", [
            "<P> The <b> Danube </b> is the second - longest river in Europe . It rises in the Black Forest and "
            "flows through or along the borders of ten countries before reaching the Black Sea . </P>",
        ], [(0, ["ten"], "NONE"), (0, ["ten countries"], "NONE"), (0, ["ten"], "NONE"), (None, [], "NONE"),
            (0, ["ten"], "NONE")]),
        ("Sherlock Holmes", "who created the character sherlock holmes", [
            "<P> <b> Sherlock Holmes </b> is a fictional detective created by the British author Sir Arthur "
            "Conan\u00a0Doyle , who first wrote about him in A Study in Scarlet in 1887 . </P>",
        ], [(0, ["Sir Arthur Conan\u00a0Doyle"], "NONE"), (0, ["Arthur Conan\u00a0Doyle"], "NONE"),
            (0, ["the British author Sir Arthur Conan\u00a0Doyle"], "NONE"),
            (0, ["Sir Arthur Conan\u00a0Doyle"], "NONE"), (None, [], "NONE")]),
    ],
]


def example(page: Page, example_id: int) -> dict[str, Any]:
    """One NQ example: the page's HTML, tokens, candidates and annotations with byte offsets."""
    title, question, blocks, annotations = page
    head = ["<HTML>", "<HEAD>", "<TITLE>", *title.split(), "-", "Wikipedia", "</TITLE>", "</HEAD>", "<BODY>",
            "<H1>", *title.split(), "</H1>"]
    tokens: list[str] = list(head)
    block_spans: list[tuple[int, int]] = []
    for block in blocks:
        start = len(tokens)
        tokens.extend(_TOKEN.findall(block))
        block_spans.append((start, len(tokens)))
    tokens += ["</BODY>", "</HTML>"]
    offsets: list[tuple[int, int]] = []
    position = 0
    for token in tokens:
        size = len(token.encode("utf-8"))
        offsets.append((position, position + size))
        position += size + 1
    page_html = " ".join(tokens)

    def span(first: int, end: int) -> dict[str, int]:
        return {"start_byte": offsets[first][0], "end_byte": offsets[end - 1][1], "start_token": first,
                "end_token": end}

    def find(phrase: str, block: int) -> dict[str, int]:
        words = _TOKEN.findall(phrase)
        low, high = block_spans[block]
        for first in range(low, high - len(words) + 1):
            if tokens[first:first + len(words)] == words:
                return span(first, first + len(words))
        raise ValueError(f"{phrase!r} is not in block {block} of {title!r}")

    candidates = [{**span(a, b), "top_level": True} for a, b in block_spans]
    rows = []
    for number, (block, shorts, yes_no) in enumerate(annotations):
        if block is None:
            long_answer = {"start_byte": -1, "end_byte": -1, "start_token": -1, "end_token": -1,
                           "candidate_index": -1}
        else:
            long_answer = {**span(*block_spans[block]), "candidate_index": block}
        rows.append({"annotation_id": example_id * 10 + number, "long_answer": long_answer,
                     "short_answers": [find(s, block) for s in shorts] if block is not None else [],
                     "yes_no_answer": yes_no})
    return {
        "annotations": rows,
        "document_html": page_html,
        "document_title": title,
        "document_tokens": [{"token": t, "start_byte": a, "end_byte": b, "html_token": t.startswith("<")}
                            for t, (a, b) in zip(tokens, offsets)],
        "document_url": "https://en.wikipedia.org//w/index.php?title=" + title.replace(" ", "_"),
        "example_id": example_id,
        "long_answer_candidates": candidates,
        "question_text": question,
        "question_tokens": [{"token": w} for w in question.split()],
    }


def main() -> None:
    example_id = 8000000000000000000
    for number, pages in enumerate(SHARDS):
        lines = []
        for page in pages:
            example_id += 1
            lines.append(json.dumps(example(page, example_id), ensure_ascii=False) + "\n")
        data = "".join(lines).encode("utf-8")
        (HERE / f"nq-dev-{number:02d}.jsonl.gz").write_bytes(gzip.compress(data, mtime=0))


if __name__ == "__main__":
    main()
