"""``resyn serve``: the reward scorer as an HTTP service, for trainers on other hosts.

:class:`RewardServer` puts one :class:`~resyn.reward.RewardScorer` behind OpenRLHF's
``POST /get_reward`` contract, a plain batched ``POST /score`` and ``GET /health``;
:func:`label_for` and :func:`parse_label` define the OpenRLHF label that identifies a row's
instance. See :mod:`resyn.serve.server` for what the server guarantees.
"""

from resyn.serve.labels import Label, LabelError, label_for, parse_label
from resyn.serve.models import (
    ErrorResponse,
    HealthResponse,
    OpenRLHFRequest,
    OpenRLHFResponse,
    ScoreRequest,
    ScoreResponse,
    ServeConfig,
)
from resyn.serve.server import RewardServer, split_response

__all__ = [
    "ErrorResponse",
    "HealthResponse",
    "Label",
    "LabelError",
    "OpenRLHFRequest",
    "OpenRLHFResponse",
    "RewardServer",
    "ScoreRequest",
    "ScoreResponse",
    "ServeConfig",
    "label_for",
    "parse_label",
    "split_response",
]
