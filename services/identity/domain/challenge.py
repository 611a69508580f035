"""The registration challenge: a short question the server makes up and checks.

Every question is text, so screen readers can read it; `audio_text` says the
same thing in words suited to speech (numbers spelled out), for a "listen"
button. It is one layer of anti-automation: the rate limits are the other.
"""

from __future__ import annotations

import dataclasses
import random
import re

_NUMBERS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()
_TENS = {20: "twenty", 30: "thirty", 40: "forty", 50: "fifty", 60: "sixty", 70: "seventy"}
_WORDS = (
    "water river garden meter street bridge harbor market orange yellow window summer "
    "library planet forest violet museum silver"
).split()
_ORDINALS = ["first", "second", "third", "fourth", "fifth"]


def number_words(n: int) -> str:
    if n <= 20:
        return _NUMBERS[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens * 10] + (f"-{_NUMBERS[ones]}" if ones else "")


@dataclasses.dataclass(frozen=True)
class Challenge:
    question: str
    audio_text: str
    answers: tuple[str, ...]  # normalized accepted answers


def normalize_answer(answer: str) -> str:
    return re.sub(r"[^a-z0-9]", "", (answer or "").lower())


_WORD_VALUES = {normalize_answer(number_words(n)): n for n in range(0, 80)}


def _number_answers(n: int) -> tuple[str, ...]:
    return (str(n), normalize_answer(number_words(n)))


def make_challenge(rng: random.Random) -> Challenge:
    kind = rng.randrange(4)
    if kind == 0:
        a, b = rng.randint(2, 19), rng.randint(2, 19)
        return Challenge(
            question=f"What is {a} plus {number_words(b)}? Answer with a number.",
            audio_text=(f"What is {number_words(a)} plus {number_words(b)}? Answer with a number."),
            answers=_number_answers(a + b),
        )
    if kind == 1:
        values = rng.sample(range(3, 70), 3)
        spoken = ", ".join(number_words(v) for v in values[:-1]) + f" or {number_words(values[-1])}"
        listed = ", ".join(str(v) for v in values[:-1]) + f" or {values[-1]}"
        return Challenge(
            question=f"Which is the largest number: {listed}?",
            audio_text=f"Which is the largest number: {spoken}?",
            answers=_number_answers(max(values)),
        )
    if kind == 2:
        word = rng.choice(_WORDS)
        spelled = ", ".join(word.upper())
        return Challenge(
            question=f"Type the word '{word}' backwards.",
            audio_text=f"Type the word {word}, spelled {spelled}, backwards, last letter first.",
            answers=(word[::-1],),
        )
    word = rng.choice(_WORDS)
    position = rng.randrange(min(5, len(word)))
    spelled = ", ".join(word.upper())
    return Challenge(
        question=f"What is the {_ORDINALS[position]} letter of the word '{word}'?",
        audio_text=(
            f"What is the {_ORDINALS[position]} letter of the word {word}, spelled {spelled}?"
        ),
        answers=(word[position],),
    )


def answer_matches(answer: str, accepted: tuple[str, ...] | list[str]) -> bool:
    given = normalize_answer(answer)
    if not given:
        return False
    if given in accepted:
        return True
    value = _WORD_VALUES.get(given)
    return value is not None and str(value) in accepted
