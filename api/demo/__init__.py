"""``warden demo``: Warden's loops on UCI Adult and on Banking77, against a real server.

The demo is a client of Warden like any team would be. It starts what ``warden up`` starts —
the API and dashboard (uvicorn on ``127.0.0.1:<port>``), the scheduler and one worker, all on a
fresh embedded store under ``./.warden/`` — and then drives every step through the public REST
API, with the people it created, so each action is permission-checked and audited as in real use:

1. store, administrator and people (data scientist, approver, auditor) with fresh credentials;
2. a retraining pipeline run trains the income model, evaluation (fairness by sex and race),
   promotion request, approval by the approver, promotion to champion;
3. the reference baseline and five monitors (drift, data quality, performance, fairness,
   explanations) on intervals of seconds; an alert rule to a local webhook receiver that the
   administrator allow-lists, and a policy that opens an incident and retrains on drift;
4. production traffic through the predict endpoint, then a population shift drawn from the data
   itself (married people aged 40 and over), logged with labels for part of it;
5. the monitors find the shift, the policy opens an incident, the webhook hears of it and the
   retraining pipeline runs on the champion's training data plus the recent labelled traffic; the
   challenger is evaluated against the champion, approved and promoted; a rollback policy is set;
6. model card and project audit report, audit chain verification;
7. the LLM loop in a second project: a banking-support assistant's prompt v1 approved and live
   in an LLM deployment bound to an OpenAI-compatible endpoint (a local stand-in unless
   ``--llm-base-url`` names a real server: no LLM can be downloaded here), a golden-set
   evaluation of v1 and v2, the runs compared, v2 approved by someone other than its author;
8. the assistant (``warden-client``'s PromptClient, the stock OpenTelemetry SDK exporting over
   OTLP) answers ordinary Banking77 traffic under v1, v2 goes live, the traffic shifts to lost
   and stolen cards; embedding drift finds it, v2's refusal rate alerts and a policy rolls
   ``production`` back to v1; a budget warns once; the audit chain verifies; a summary with links.

Every wait is bounded: a step that does not happen in time stops the demo with a non-zero exit
saying which step and why (:class:`DemoFailed`); nothing is simulated but the LLM (the
stand-in), and the demo says so.

Where each part lives: ``main`` runs the steps in order; ``processes`` (the store and what
``warden up`` starts), ``people`` (1), ``training`` (2), ``monitoring`` (3), ``traffic`` (4),
``loop`` (5), ``audit_reports`` (6), ``llm_prompts`` (7) and ``llm_loop`` (8) are the steps;
``context`` is the state they share, ``client`` the REST client, ``receiver`` the webhook
receiver, ``output`` the console and the summary, ``options`` the names and the failure;
``adult`` is the data and the training step, ``banking`` the LLM loop's data and stand-in,
``assistant`` its OpenTelemetry-instrumented application.
"""

from api.demo.adult import find_adult_data
from api.demo.main import run
from api.demo.options import DEMO_MARKER, PROJECT, DemoFailed, DemoOptions
from api.demo.receiver import WebhookReceiver

__all__ = [
    "DEMO_MARKER",
    "PROJECT",
    "DemoFailed",
    "DemoOptions",
    "WebhookReceiver",
    "find_adult_data",
    "run",
]
