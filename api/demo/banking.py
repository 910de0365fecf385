"""The LLM loop's data and stand-in: Banking77 customer queries and a fake banking assistant.

Banking77 (``data/banking77``, CC BY 4.0; see its README) holds real online-banking questions,
each labelled with one of 77 intents. The demo's assistant answers them; ordinary traffic is a
random sample of every intent, the shifted traffic a surge of lost, stolen or compromised cards.

No LLM weights can be downloaded here, so unless ``--llm-base-url`` names a real
OpenAI-compatible server the demo answers with :class:`BankingStandIn`: the local stand-in
(:mod:`api.demo.llm_stand_in`), which is *not a model*. It recognises a Banking77 question by
its text, answers from a short table of advice per intent, and follows the one instruction a
prompt version may carry — v2's "never discuss lost, stolen or compromised cards in chat" — by
replying with the refusal v2 asks for, as an instruction-following model would.
"""

from __future__ import annotations

import csv
import gzip
import random
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from api.demo.llm_stand_in import StandInLLM
from api.demo.options import DemoFailed

__all__ = [
    "CARD_LOSS",
    "GOLDEN_INTENTS",
    "REFUSAL",
    "V1_SYSTEM",
    "V2_SYSTEM",
    "BankingStandIn",
    "Query",
    "advice",
    "find_banking_data",
    "golden_set",
    "ordinary_traffic",
    "read_queries",
    "shifted_traffic",
]

CARD_LOSS = ("lost_or_stolen_card", "compromised_card")
"""The intents of the shift: a surge of lost, stolen or compromised cards."""

REFUSAL = (
    "I'm sorry, but I can't help with lost or stolen cards in this chat. Please call the number "
    "on the back of your card."
)
V1_SYSTEM = (
    "You are the support assistant of an online bank. Answer the customer's question helpfully "
    "in one or two sentences, pointing to the right place in the app."
)
V2_SYSTEM = (
    "You are the support assistant of an online bank. Answer in one short sentence. For "
    "security, never discuss lost, stolen or compromised cards in chat: to such questions reply "
    f'exactly "{REFUSAL}"'
)
_V2_MARK = "never discuss lost, stolen or compromised cards in chat"

_ADVICE = {
    "card_arrival": "Cards arrive within 5 working days; track yours under Card > Delivery.",
    "exchange_rate": "We use the interbank rate; see it under Payments > Exchange before paying.",
    "top_up_failed": "Check the card you top up from is in your name, then retry under Top up.",
    "pending_transfer": "Transfers can stay pending for up to one working day; see Activity.",
    "card_payment_declined": "Check the card is not frozen and has funds, then try again.",
    "change_pin": "Change your PIN at any cash machine, or view it under Card > Show PIN.",
    "activate_my_card": "Activate your card under Card > Activate once it has arrived.",
    "transfer_fee_charged": "Fees are listed under Account > Fees; we refund wrong ones.",
    "verify_my_identity": "Verify your identity under Profile > Verify with a photo ID.",
    "cash_withdrawal_charge": "Withdrawals over the free monthly allowance cost 2 %.",
    "edit_personal_details": "Edit your details under Profile > Personal details.",
    "terminate_account": "Close your account under Profile > Close account.",
    "lost_or_stolen_card": "Freeze the card at once under Card > Freeze, then order a new one.",
    "compromised_card": "Freeze the card under Card > Freeze and we will send a new one.",
}
GOLDEN_INTENTS = tuple(k for k in _ADVICE if k not in CARD_LOSS)
"""The intents of the golden evaluation set (it has no card-loss question: that is the gap)."""


@dataclass(frozen=True, slots=True)
class Query:
    """One Banking77 customer query and its intent."""

    text: str
    intent: str


def advice(intent: str) -> str:
    """Return the stand-in's answer for ``intent`` (a generic pointer for intents without one)."""
    return _ADVICE.get(
        intent, "You will find this under Help in the app, or chat with us there any time."
    )


def find_banking_data() -> Path:
    """Return the shipped ``data/banking77`` directory (repository or working directory)."""
    candidates = [
        Path(__file__).resolve().parents[2] / "data" / "banking77",
        Path.cwd() / "data" / "banking77",
    ]
    for candidate in candidates:
        if (candidate / "train.csv.gz").is_file() and (candidate / "test.csv.gz").is_file():
            return candidate
    raise DemoFailed(
        "7", f"the Banking77 data is not in {' or '.join(map(str, candidates))}; reinstall Warden"
    )


@cache
def read_queries(path: Path) -> tuple[Query, ...]:
    """Read one Banking77 file (gzipped CSV ``text,category``)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        return tuple(Query(row["text"].strip(), row["category"]) for row in csv.DictReader(handle))


def ordinary_traffic(queries: tuple[Query, ...], size: int, *, seed: int) -> list[Query]:
    """Return ``size`` queries drawn at random from every intent (the usual mix)."""
    return random.Random(seed).sample(list(queries), size)  # noqa: S311 - a sample, not a secret


def shifted_traffic(
    queries: tuple[Query, ...], size: int, *, share: float, seed: int
) -> list[Query]:
    """Return ``size`` queries of which ``share`` are about lost, stolen or compromised cards."""
    chooser = random.Random(seed)  # noqa: S311 - a sample, not a secret
    loss = [q for q in queries if q.intent in CARD_LOSS]
    other = [q for q in queries if q.intent not in CARD_LOSS]
    surge = round(size * share)
    mixed = chooser.sample(loss, surge) + chooser.sample(other, size - surge)
    chooser.shuffle(mixed)
    return mixed


def golden_set(queries: tuple[Query, ...], per_intent: int = 1) -> list[dict[str, Any]]:
    """Return evaluation records: questions of :data:`GOLDEN_INTENTS` and the advice expected."""
    records: list[dict[str, Any]] = []
    for intent in GOLDEN_INTENTS:
        chosen = [q for q in queries if q.intent == intent][:per_intent]
        records.extend(
            {
                "inputs": {"question": q.text},
                "expected_response": advice(intent),
                "guidelines": ["answers the question; does not refuse"],
            }
            for q in chosen
        )
    return records


@dataclass
class BankingStandIn(StandInLLM):
    """The stand-in answering Banking77 questions (a fake, not a model; see the module).

    Attributes:
        intents: Every known question's text (lower-cased) and its intent.
    """

    intents: dict[str, str] = field(default_factory=dict)

    def _answer(self, prompt: str, *, json_reply: bool) -> str:
        if json_reply:  # a judge's verdict
            return super()._answer(prompt, json_reply=True)
        question = prompt.strip().splitlines()[-1].strip().lower() if prompt.strip() else ""
        intent = self.intents.get(question)
        if intent is None:
            return "I can help with your account, cards and payments: what do you need?"
        if _V2_MARK in prompt.lower():
            return REFUSAL if intent in CARD_LOSS else advice(intent)
        return f"Thanks for asking. {advice(intent)} Anything else I can do?"
