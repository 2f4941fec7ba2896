"""Writes a small NarrativeQA in the repository's own layout: ``qaps.csv`` and
``third_party/wikipedia/summaries.csv``, with the real files' columns.

Twelve made-up stories (seven train, two valid, three test), each with one to four questions
and two answers per question. The texts exercise what HELM's reader does: summaries with
blanks around them and a paragraph break inside, questions with and without a question mark
or with blanks after it, answers kept as written, several questions per story (one is drawn),
a story with a summary but no questions, and one test summary of some 7,000 tokens, so that
in-context examples must be dropped to fit an 8,192-token context window. Run it to rewrite
the files::

    python tests/data/helm_sources/narrative_qa/make_files.py
"""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

HERE = Path(__file__).parent

# (document_id, set, summary, [(question, answer1, answer2), ...])
Story = tuple[str, str, str, list[tuple[str, str, str]]]

STORIES: list[Story] = [
    ("0a1f3c", "train",
     "Mara Quill keeps the lighthouse on the island of Tessel after her father drowns. A storm drives a merchant "
     "ship onto the rocks, and Mara rows out alone to rescue its crew. Among the survivors is Tomas, a young "
     "cartographer who is mapping the northern coast for the Admiralty. While he recovers, Tomas teaches Mara to "
     "read charts, and she shows him the hidden currents that sank her father's boat. When the Admiralty orders "
     "the lighthouse closed, Mara uses Tomas's new map to prove that the currents make the light essential. "
     "The order is withdrawn, and Tomas leaves to finish his survey, promising to return in the spring.",
     [("Who keeps the lighthouse on Tessel?", "Mara Quill", "Mara, after her father drowned"),
      ("What is Tomas's profession", "A cartographer", "He makes maps for the Admiralty"),
      ("How does Mara save the lighthouse?", "She proves the currents make the light essential",
       "With Tomas's map of the currents")]),
    ("1b2e4d", "train",
     "  In a mountain village, the clockmaker Anselm builds a clock that is said to run backwards on the night of "
     "the winter fair. His apprentice, Lena, suspects the rumour was started by Anselm himself to sell more "
     "clocks. She discovers that the clock's gears were cut by a rival, Gregor, who wants Anselm to be "
     "laughed out of the guild.\nAt the fair the clock does run backwards, but Lena has swapped one gear, and it "
     "plays the guild's anthem instead. Gregor is exposed, and Lena becomes the first woman admitted to the "
     "guild.  ",
     [("Who cut the gears of the clock?", "Gregor, a rival clockmaker", "Gregor"),
      ("what does the clock play at the fair", "The guild's anthem", "the anthem of the guild")]),
    ("2c3f5e", "train",
     "Captain Ivo Brandt leads a failing expedition across a salt desert in search of a buried city. His "
     "guide, Samira, warns him that the wells on his old map have dried. Brandt ignores her until half the "
     "camels die. Samira then leads the survivors to an oasis that is on no map, where they find the city's "
     "gate half buried in sand. Brandt wants to claim the discovery for himself, but the others vote to name "
     "the city after Samira.",
     [("Whom is the city named after?", "Samira", "The guide, Samira"),
      ("Why do the camels die?", "The wells on the old map have dried up", "There is no water at the wells")]),
    ("3d4a6f", "train",
     "A retired judge, Horace Penn, moves into a boarding house whose other lodgers all claim to have seen a "
     "ghost in the attic. Penn treats the matter as a case, hearing each lodger's testimony in turn. He finds "
     "that every account describes the ghost differently, and concludes that the landlady has been renting the "
     "attic in secret to a travelling actor. The actor, Felix, confesses, and Penn persuades the landlady to let "
     "him stay on as a paying lodger.",
     [("Who is the ghost in the attic?", "Felix, a travelling actor", "An actor who rents the attic in secret"),
      ("What was Horace Penn's job before he retired", "He was a judge", "Judge ")]),
    ("4e5b7a", "train",
     "Two sisters, Ada and Bea, inherit a failing orchard. Ada wants to sell it to a developer; Bea wants to "
     "save it. They agree to one harvest season as a trial. Bea grafts an old variety of apple onto the young "
     "trees, and the crop wins first prize at the county show. The developer withdraws his offer when the "
     "orchard is listed as a heritage site, and the sisters run it together.",
     [("What do the sisters inherit?", "An orchard", "A failing apple orchard")]),
    ("5f6c8b", "train",
     "The young monk Brother Aldric is sent to copy a rare manuscript held in a remote abbey. He finds that "
     "the abbot has been selling the abbey's books to pay its debts. Aldric copies the manuscript in secret "
     "at night, so that the text survives even if the original is sold. When the book is taken away by a "
     "collector, Aldric's copy becomes the only one the abbey keeps, and the abbot, ashamed, resigns.",
     [("Why does Aldric copy the manuscript at night?", "So the text survives if the original is sold",
       "To keep a copy in secret"),
      ("What has the abbot been doing with the books?", "Selling them to pay the abbey's debts", "Selling them"),
      ("  Who takes the original manuscript away ", "A collector", "a book collector"),
      ("What happens to the abbot at the end?", "He resigns", "He resigns in shame")]),
    ("6a7d9c", "train",
     "During a long winter, the village of Harlow runs out of grain. A girl named Pim walks across the frozen "
     "lake to the town of Esker to ask for help, though the ice is thin at its centre. In Esker the mayor "
     "refuses, until Pim tells him that Harlow's miller once saved Esker from the same famine. The mayor sends "
     "sledges of grain by the long road, and Pim returns with them as a heroine.",
     [("How does Pim reach Esker?", "She walks across the frozen lake", "Across the ice of the lake")]),
    ("7b8e0d", "valid",
     "An inventor, Clara Voss, builds a flying machine in her barn but cannot afford an engine. She enters a "
     "competition whose prize is a new engine, competing against the wealthy Baron Holt. Holt sabotages her "
     "glider the night before the race. Clara repairs it with the sails of her late husband's boat and wins "
     "by gliding from the cliffs of Dunmore across the bay. She uses the prize engine to start a postal "
     "service between the islands.",
     [("Who sabotages Clara's glider?", "Baron Holt", "The wealthy Baron Holt"),
      ("What does Clara use to repair the glider?", "The sails of her late husband's boat", "Boat sails"),
      ("What does Clara start with the engine?", "A postal service between the islands", "An island post")]),
    ("8c9f1e", "valid",
     "The boy Oren finds a wounded hawk on the moor and nurses it in secret, because his father, a gamekeeper, "
     "shoots hawks to protect the grouse. When the hawk is well, Oren trains it to hunt rats in the barn. His "
     "father discovers the bird and is about to kill it, but sees that the barn is free of rats for the first "
     "time in years. He lets Oren keep the hawk, and stops shooting hawks on the estate.",
     [("What does Oren train the hawk to do?", "Hunt rats in the barn", "To catch rats"),
      ("What is the job of Oren's father?", "He is a gamekeeper", "Gamekeeper")]),
    ("9d0a2f", "test",
     "A famous singer, Lucia Brandão, loses her voice on the eve of her farewell concert. Her understudy, a "
     "shy seamstress named Nell, has learned every song by listening from the wings. Lucia teaches Nell how "
     "to breathe and stand during one sleepless night. Nell sings the concert in Lucia's costume, and the "
     "audience, told the truth at the end, gives her a standing ovation.",
     [("Who sings the farewell concert?", "Nell, the understudy", "The seamstress Nell"),
      ("How did Nell learn the songs?", "By listening from the wings", "Listening from the side of the stage")]),
    ("0e1b3a", "test",
     "In a city of canals, the ferryman Joss finds a message in a bottle describing a treasure under the "
     "old customs house. He and his friend Wren, a locksmith's daughter, search the flooded cellars and find "
     "only the records of a smuggling ring that still runs the city's council. They deliver the records to a "
     "newspaper, and the councillors are arrested.",
     [("Where is the treasure said to be?", "Under the old customs house", "Beneath the customs house"),
      ("What do Joss and Wren find in the cellars?", "Records of a smuggling ring", "Smugglers' records")]),
    ("1f2c4b", "train",
     "A summary of a story whose questions were not published; HELM's reader skips it.",
     []),
]

LONG_ID = "2a3d5c"
LONG_QUESTIONS = [("What does the caravan carry along the Salt Road?", "Salt from the coastal pans",
                   "Blocks of salt"),
                  ("Who leads the caravan?", "Old Benedek", "Benedek, the caravan master")]

TOWNS = ("Arvel", "Brenn", "Caddow", "Dunmar", "Elsk", "Farrow", "Gildon", "Hesk", "Ilvar", "Jorvik", "Kells",
         "Lorne", "Moray", "Nessel", "Orrin", "Pellam", "Quarry", "Rusk", "Selby", "Torrin")
TRADES = ("weavers", "smiths", "potters", "millers", "tanners", "coopers", "masons", "dyers", "brewers", "glaziers")
GOODS = ("wool", "iron nails", "clay jars", "flour", "leather", "barrels", "cut stone", "dyed cloth", "ale", "glass")
EVENTS = ("a river in flood", "a broken axle", "a quarrel over tolls", "a sick mule", "a wedding feast",
          "a fallen bridge", "a band of pedlars", "a week of rain", "a lost child", "a fire in the granary")


def long_summary() -> str:
    """The Salt Road's chronicle: one paragraph per town and year, made from fixed parts."""
    rng = random.Random(7)
    paragraphs = ["Old Benedek leads a caravan of mules along the Salt Road, carrying salt from the coastal "
                  "pans to the mountain towns, as his family has done for generations. The story follows the "
                  "caravan through twenty towns over four years."]
    for year in range(1, 5):
        for town in TOWNS if year < 4 else TOWNS[:8]:
            trade, goods, event = rng.choice(TRADES), rng.choice(GOODS), rng.choice(EVENTS)
            paragraphs.append(
                f"In the year {year} of the journey the caravan reaches {town}, where the {trade} trade "
                f"{goods} for salt. The stay is made longer by {event}, and Benedek must bargain with the "
                f"headman of {town} for fodder and a place to rest. His nephew Tamas keeps the ledger and "
                f"notes that the price of salt in {town} has risen by {rng.randint(2, 9)} coins since the last "
                f"visit. Before leaving, the drivers mend their harness, count the mules, and hear the news "
                f"of the road ahead from travellers coming the other way.")
    paragraphs.append("In the fourth year Benedek grows too old for the road, and Tamas takes the "
                      "caravan on alone, carrying the salt as his uncle did.")
    return " ".join(paragraphs)


def tokenized(text: str) -> str:
    """The real files' ``*_tokenized`` columns: words and punctuation separated by blanks."""
    return " ".join(re.findall(r"\w+|[^\w\s]", text))


def main() -> None:
    stories = list(STORIES)
    stories.insert(11, (LONG_ID, "test", long_summary(), LONG_QUESTIONS))
    summaries = HERE / "third_party" / "wikipedia" / "summaries.csv"
    summaries.parent.mkdir(parents=True, exist_ok=True)
    with summaries.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["document_id", "set", "summary", "summary_tokenized"])
        for document, split, summary, _ in stories:
            writer.writerow([document, split, summary, tokenized(summary)])
    with (HERE / "qaps.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["document_id", "set", "question", "answer1", "answer2", "question_tokenized",
                         "answer1_tokenized", "answer2_tokenized"])
        for document, split, _, questions in stories:
            for question, answer1, answer2 in questions:
                writer.writerow([document, split, question, answer1, answer2, tokenized(question).lower(),
                                 tokenized(answer1).lower(), tokenized(answer2).lower()])


if __name__ == "__main__":
    main()
