"""``resyn serve`` (:mod:`resyn.serve`): the reward server, called over real HTTP on 127.0.0.1.

Servers run in this process (port 0) against a catalog built from fixture modules, which run only
in sandbox workers; the command itself runs as a subprocess for its start-up errors and SIGTERM.
Queueing, timeouts and shutdown are made deterministic by gating the scorer with an event: no test
asserts how long anything took.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from resyn.catalog import Catalog
from resyn.reward import RewardConfig, RewardScorer
from resyn.sandbox import Sandbox, SandboxConfig
from resyn.serve import LabelError, RewardServer, ServeConfig, label_for, parse_label, split_response
from tests.conftest import FIXTURES
from tests.test_catalog import accept_round, make_candidate, make_run, make_task
from tests.test_cli import assert_one_line_error
from tests.test_cli_catalog import ROOT, env_name, resyn

MODULES = {
    "count": FIXTURES / "good" / "count_divisible.py",
    "sort": FIXTURES / "good" / "sort_numbers.py",
    "hang": FIXTURES / "hostile" / "cpu_loop_verify.py",
    "segfault": FIXTURES / "hostile" / "segfault.py",
}
SANDBOX = SandboxConfig(item_timeout_s=1.0, call_overhead_s=1.0, load_timeout_s=5.0)
FAST = RewardConfig(workers_per_env=1, sandbox=SANDBOX)
JUNK = "<answer>zz-not-an-answer-zz</answer>"
TEMPLATE = "<|im_start|>user\n{question}\nAnswer like <answer>42</answer>.<|im_end|>\n<|im_start|>assistant\n"


def answer(text: str) -> str:
    return f"Let me think.\n<answer>{text}</answer>"


def build_catalog(path: Path, modules: dict[str, Path]) -> dict[str, str]:
    """A catalog with one accepted environment per module; returns key → env id."""
    ids: dict[str, str] = {}
    with Catalog.open(path) as catalog:
        catalog.upsert_run(make_run("serve"))
        tasks = [make_task("serve", key, position) for position, key in enumerate(modules)]
        catalog.add_tasks(tasks)
        for task, module in zip(tasks, modules.values(), strict=True):
            candidate = make_candidate(task, 1, module.read_text())
            catalog.add_candidate(candidate)
            ids[task.keyword] = accept_round(catalog, task, candidate, env_name(module))
    return ids


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("serve") / "catalog.duckdb"
    return path, build_catalog(path, MODULES)


@pytest.fixture(scope="module")
def samples(catalog: tuple[Path, dict[str, str]]) -> dict[str, list[dict[str, Any]]]:
    """Instances (with question and gold answer) of the good modules, drawn in the sandbox."""
    drawn: dict[str, list[dict[str, Any]]] = {}
    for key in ("count", "sort"):
        module = MODULES[key]
        with Sandbox(module.read_text(), filename=module.name, config=SANDBOX) as sandbox:
            sandbox.load()
            keys = [(seed, level) for seed in (3, 4) for level in (1, 2)]
            results = sandbox.sample(keys)
        assert all(r.ok for r in results)
        drawn[key] = [
            {
                "seed": s,
                "difficulty": d,
                "instance": r.value["instance"],
                "question": r.value["question"],
                "gold": r.value["solution"],
            }
            for (s, d), r in zip(keys, results, strict=True)
        ]
    return drawn


def start(path: Path, **config: Any) -> RewardServer:
    scorer = RewardScorer.from_catalog(path, config=FAST)
    return RewardServer(scorer, ServeConfig(port=0, **config)).start()


@pytest.fixture(scope="module")
def served(catalog: tuple[Path, dict[str, str]]) -> Iterator[RewardServer]:
    server = start(catalog[0], max_body_bytes=1 << 20)
    yield server
    server.stop()


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, server: RewardServer) -> None:
        host, port = server.address
        self.conn = http.client.HTTPConnection(host, port, timeout=120)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPResponse, Any]:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        self.conn.request(
            method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})}
        )
        response = self.conn.getresponse()
        raw = response.read()
        return response.status, response, json.loads(raw) if raw else None

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        status, _, payload = self.request("POST", path, body)
        return status, payload

    def close(self) -> None:
        self.conn.close()


def item(env_id: str, sample: dict[str, Any], completion: Any, **extra: Any) -> dict[str, Any]:
    return {
        "env_id": env_id,
        "instance_json": json.dumps(sample["instance"]),
        "completion": completion,
        **extra,
    }


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll until ``condition`` holds (a safety net against a hung test, not a timing assertion)."""
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


# -- labels ---------------------------------------------------------------------------------------------


def test_labels_round_trip_and_refuse_what_names_no_instance() -> None:
    text = label_for("count-1234", "ab" * 32, instance_json='{"n": 1}')
    assert json.loads(text) == {"env_id": "count-1234", "code_sha256": "ab" * 32, "instance_json": '{"n": 1}'}
    assert parse_label(text) == json.loads(text)
    assert parse_label(json.loads(text)) == json.loads(text)  # a label stored as an object
    regen = parse_label(label_for("e", "ab" * 32, seed=3, difficulty=2))
    assert regen == {"env_id": "e", "code_sha256": "ab" * 32, "seed": 3, "difficulty": 2}
    as_object = parse_label(label_for("e", "ab" * 32, instance_json={"b": [1, 2], "a": "é"}))
    assert json.loads(as_object["instance_json"]) == {"b": [1, 2], "a": "é"}
    for bad, fragment in [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"env_id": "e"}', "instance_json, or seed and difficulty"),
        ('{"env_id": "e", "seed": 1}', "instance_json, or seed and difficulty"),
        ('{"env_id": "e", "seed": true, "difficulty": 1}', "seed"),
        ('{"instance_json": "{}"}', "env_id"),
        ('{"env_id": "e", "instance_json": {"n": 1}}', "instance_json"),
    ]:
        with pytest.raises(LabelError, match=fragment) as info:
            parse_label(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(LabelError):
        label_for("e", "ab" * 32)
    with pytest.raises(LabelError, match="not a JSON object"):
        parse_label(7)  # type: ignore[arg-type]


def test_split_response() -> None:
    prompt = TEMPLATE.format(question="What is 2 + 2?")
    assert split_response(prompt + "four", prompt) == ("four", False)
    assert split_response("<s>" + prompt + "four", prompt) == ("four", True)  # a BOS token in front
    assert split_response("something else entirely", prompt) == ("something else entirely", True)
    assert split_response("all of it", None) == ("all of it", False)


# -- the endpoints --------------------------------------------------------------------------------------


def test_openrlhf_get_reward(
    served: RewardServer, catalog: tuple[Path, dict[str, str]], samples: dict[str, list[dict[str, Any]]]
) -> None:
    ids = {key: env for key, env in catalog[1].items()}
    sha = {key: served.scorer.environment(env).code_sha256 for key, env in ids.items()}
    rows: list[tuple[str, str, Any, float]] = []  # prompt, response, label, expected reward
    for key in ("count", "sort"):
        for sample in samples[key]:
            prompt = TEMPLATE.format(question=sample["question"])
            by_instance = label_for(ids[key], sha[key], instance_json=json.dumps(sample["instance"]))
            by_seed = label_for(ids[key], sha[key], seed=sample["seed"], difficulty=sample["difficulty"])
            rows.append((prompt, answer(sample["gold"]), by_instance, 1.0))
            rows.append((prompt, answer(sample["gold"]), json.loads(by_seed), 1.0))  # label as an object
            rows.append((prompt, JUNK, by_seed, 0.0))
            # The prompt's own "<answer>42</answer>" must not be scored: no answer in the response.
            rows.append((prompt, "I do not know.", by_instance, 0.0))
    sample = samples["count"][0]
    prompt = TEMPLATE.format(question=sample["question"])
    good_label = label_for(ids["count"], sha["count"], instance_json=json.dumps(sample["instance"]))
    queries = [p + r for p, r, _, _ in rows]
    prompts = [p for p, _, _, _ in rows]
    labels = [label for _, _, label, _ in rows]
    expected = [reward for _, _, _, reward in rows]
    # A query that does not start with its prompt (a BOS token in front), a label that is not
    # JSON, one of another code version, and none.
    queries += ["<s>" + prompt + answer(sample["gold"])] + [prompt + answer(sample["gold"])] * 3
    prompts += [prompt] * 4
    labels += [good_label, "{not json", label_for(ids["count"], "0" * 64, seed=1, difficulty=1), None]
    expected += [1.0, 0.0, 0.0, 0.0]

    client = Client(served)
    before = served.health()
    status, body = client.post("/get_reward", {"query": queries, "prompts": prompts, "labels": labels})
    assert status == 200, body
    assert set(body) == {"rewards", "scores", "extra_logs"}
    assert body["rewards"] == expected and body["scores"] == expected
    logs = body["extra_logs"]
    assert set(logs) == {"reward_pipeline_error", "reward_no_answer", "reward_prompt_mismatch"}
    assert all(len(values) == len(queries) for values in logs.values())
    assert logs["reward_prompt_mismatch"] == [0.0] * len(rows) + [1.0, 0.0, 0.0, 0.0]
    assert logs["reward_pipeline_error"] == [0.0] * len(rows) + [0.0, 1.0, 1.0, 1.0]
    assert logs["reward_no_answer"] == [1.0 if "do not know" in q else 0.0 for q in queries]
    after = served.health()
    assert after.items - before.items == len(queries)
    assert after.prompt_mismatches - before.prompt_mismatches == 1
    assert after.requests.get_reward - before.requests.get_reward == 1
    assert after.metrics["invalid_item"] - before.metrics["invalid_item"] == 2
    assert after.metrics["code_mismatch"] - before.metrics["code_mismatch"] == 1
    # OpenRLHF without prompts: the query is the response.
    status, body = client.post("/get_reward", {"query": [answer(sample["gold"])], "labels": [good_label]})
    assert (status, body["rewards"]) == (200, [1.0])
    client.close()


def test_score_endpoint(
    served: RewardServer, catalog: tuple[Path, dict[str, str]], samples: dict[str, list[dict[str, Any]]]
) -> None:
    env = catalog[1]["sort"]
    sample = samples["sort"][1]
    items = [
        item(env, sample, answer(sample["gold"])),
        {
            "env_id": env,
            "seed": sample["seed"],
            "difficulty": sample["difficulty"],
            "completion": answer(sample["gold"]),
        },
        item(env, sample, JUNK),
        item(env, sample, 5),
        item("no-such-env", sample, answer(sample["gold"])),
        {"completion": "no env id"},
        "not even an object",
    ]
    client = Client(served)
    status, body = client.post("/score", {"items": items})
    assert status == 200, body
    assert body["scores"] == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert body["reasons"] == ["ok", "ok", "ok", "not_text", "unknown_env", "invalid_item", "invalid_item"]
    assert body["details"][0] is None and "no-such-env" in body["details"][4]
    assert client.post("/score", {"items": []}) == (200, {"scores": [], "reasons": [], "details": []})
    client.close()


def test_health(served: RewardServer, catalog: tuple[Path, dict[str, str]]) -> None:
    status, response, body = Client(served).request("GET", "/health")
    assert status == 200 and response.getheader("Content-Type") == "application/json"
    assert body["status"] == "ok"
    assert sorted(body["environments"]) == sorted(catalog[1].values())
    assert body["isolation"] in ("bwrap-root", "bwrap-userns", "none")
    assert body["queue_depth"] == 0 and body["max_queue"] == 64
    assert set(body["metrics"]) >= {"ok", "timeout", "crashed", "invalid_item"}


def test_http_errors_are_one_line_json_and_keep_the_connection(served: RewardServer) -> None:
    client = Client(served)
    cases: list[tuple[str, str, Any, int, str]] = [
        ("POST", "/score", b'{"items": [', 400, "Invalid JSON"),
        ("POST", "/get_reward", b"\xff\xfe", 400, "Invalid JSON"),
        ("POST", "/score", {"items": 5}, 400, "items"),
        ("POST", "/score", [1, 2], 400, "expected"),
        ("POST", "/get_reward", {"query": ["a"], "labels": []}, 400, "one label a query"),
        ("POST", "/get_reward", {"query": ["a"], "prompts": ["a", "b"], "labels": [None]}, 400, "prompt"),
        ("POST", "/get_reward", {"prompts": ["a"], "labels": ["x"]}, 400, "query"),
        ("GET", "/nowhere", None, 404, "no endpoint"),
        ("GET", "/score", None, 405, "takes POST"),
        ("DELETE", "/health", None, 405, "takes GET"),
        ("POST", "/health", {}, 405, "takes GET"),
    ]
    for method, path, body, status, fragment in cases:
        got, response, payload = client.request(method, path, body)
        assert got == status, (method, path, payload)
        assert set(payload) == {"error"} and fragment in payload["error"] and "\n" not in payload["error"]
        if status == 405:
            assert response.getheader("Allow") in ("GET", "POST")
        assert response.getheader("Connection") != "close"
    # Every one of those left the connection usable.
    assert client.request("GET", "/health")[0] == 200
    # Over the body cap: 413, the body is read and dropped, and the connection still works.
    status, payload = client.post("/score", b" " * ((1 << 20) + 1))
    assert status == 413 and "at most 1048576" in payload["error"]
    assert client.request("GET", "/health")[0] == 200
    # No Content-Length: 411, and the connection is closed.
    client.conn.putrequest("POST", "/score")
    client.conn.putheader("Transfer-Encoding", "chunked")
    client.conn.endheaders()
    client.conn.send(b"0\r\n\r\n")
    response = client.conn.getresponse()
    assert response.status == 411 and response.getheader("Connection") == "close"
    client.close()
    health = served.health()
    assert health.requests.bad_request >= 7 and health.requests.too_large >= 1
    assert health.requests.not_found >= 1 and health.requests.method_not_allowed >= 3


def test_concurrent_clients_on_keep_alive_connections(
    served: RewardServer, catalog: tuple[Path, dict[str, str]], samples: dict[str, list[dict[str, Any]]]
) -> None:
    ids = catalog[1]
    pool = [(ids[key], sample) for key in ("count", "sort") for sample in samples[key]]
    before = served.health()

    def client_run(k: int) -> int:
        client = Client(served)
        checked = 0
        for r in range(6):
            batch = [pool[(k + r + j) % len(pool)] for j in range(1 + (k * r) % 9)]
            gold = [(k + j) % 2 == 0 for j in range(len(batch))]
            expected = [1.0 if g else 0.0 for g in gold]
            completions = [answer(s["gold"]) if g else JUNK for (_, s), g in zip(batch, gold, strict=True)]
            if r % 2:
                sha = {env: served.scorer.environment(env).code_sha256 for env, _ in batch}
                status, body = client.post(
                    "/get_reward",
                    {
                        "query": ["P:" + c for c in completions],
                        "prompts": ["P:"] * len(batch),
                        "labels": [
                            label_for(env, sha[env], instance_json=json.dumps(s["instance"]))
                            for env, s in batch
                        ],
                    },
                )
                assert status == 200 and body["rewards"] == expected
            else:
                items = [item(env, s, c) for (env, s), c in zip(batch, completions, strict=True)]
                status, body = client.post("/score", {"items": items})
                assert status == 200 and body["scores"] == expected
            checked += len(batch)
        client.close()
        return checked

    with ThreadPoolExecutor(8) as executor:
        total = sum(executor.map(client_run, range(8)))
    after = served.health()
    assert after.items - before.items == total
    assert after.metrics["ok"] - before.metrics["ok"] == total
    assert after.queue_depth == 0


def test_hostile_modules_score_zero_and_the_server_stays_up(
    served: RewardServer, catalog: tuple[Path, dict[str, str]], samples: dict[str, list[dict[str, Any]]]
) -> None:
    ids = catalog[1]
    good = samples["count"][0]
    items = [
        {"env_id": ids["hang"], "instance": {"q": 1}, "completion": answer("2")},  # verify never returns
        # generate segfaults:
        {"env_id": ids["segfault"], "seed": 1, "difficulty": 1, "completion": answer("2")},
        {"env_id": ids["segfault"], "instance": {"q": 1}, "completion": answer("2")},  # its verify is fine
        item(ids["count"], good, answer(good["gold"])),
    ]
    client = Client(served)
    status, body = client.post("/score", {"items": items})
    assert status == 200, body
    assert body["scores"] == [0.0, 0.0, 1.0, 1.0]
    assert body["reasons"] == ["timeout", "crashed", "ok", "ok"]
    assert client.request("GET", "/health")[2]["status"] == "ok"
    assert client.post("/score", {"items": items[3:]})[1]["scores"] == [1.0]
    client.close()


# -- queueing, timeouts, shutdown ----------------------------------------------------------------------


class Gate:
    """Holds every scoring call of a server's scorer until opened."""

    def __init__(self, server: RewardServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened = threading.Event()
        real = server.scorer.score_detailed

        def gated(items: Any) -> Any:
            self.opened.wait()
            return real(items)

        monkeypatch.setattr(server.scorer, "score_detailed", gated)


def background(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    return thread, out


def gated(
    catalog: tuple[Path, dict[str, str]],
    samples: dict[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    **config: Any,
) -> tuple[RewardServer, Gate, dict[str, Any]]:
    """A server whose scoring waits for its gate, and a /score body of one gold item."""
    server = start(catalog[0], **config)
    sample = samples["count"][0]
    return (
        server,
        Gate(server, monkeypatch),
        {"items": [item(catalog[1]["count"], sample, answer(sample["gold"]))]},
    )


def held(server: RewardServer, body: dict[str, Any]) -> tuple[threading.Thread, list[Any]]:
    """A request sent in the background, once the server has admitted it."""
    thread, out = background(lambda: Client(server).request("POST", "/score", body))
    wait_for(lambda: server.health().queue_depth == 1, "the request to be admitted")
    return thread, out


def test_queue_overflow_gets_503_and_a_slow_request_504(
    catalog: tuple[Path, dict[str, str]],
    samples: dict[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, gate, body = gated(catalog, samples, monkeypatch, max_queue=2, request_timeout_s=0.5)
    try:
        held = [background(lambda: Client(server).post("/score", body)) for _ in range(2)]
        for thread, _ in held:
            thread.join()
        # Both timed out (504) while their items are still held: they still fill the queue ...
        for _, out in held:
            status, payload = out[0]
            assert status == 504 and "--request-timeout" in payload["error"]
        assert server.health().queue_depth == 2
        # ... so a third request is refused before its body is read, and may retry.
        status, response, payload = Client(server).request("POST", "/score", body)
        assert status == 503 and response.getheader("Retry-After") == "1" and "busy" in payload["error"]
        gate.opened.set()
        wait_for(lambda: server.health().queue_depth == 0, "the held requests to finish")
        assert Client(server).post("/score", body) == (
            200,
            {"scores": [1.0], "reasons": ["ok"], "details": [None]},
        )
        counts = server.health().requests
        assert (counts.timed_out, counts.busy, counts.score) == (2, 1, 1)
    finally:
        gate.opened.set()
        server.stop()


def test_stop_finishes_requests_in_flight_then_refuses_connections(
    catalog: tuple[Path, dict[str, str]],
    samples: dict[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, gate, body = gated(catalog, samples, monkeypatch, drain_timeout_s=60)
    idle = Client(server)
    assert idle.request("GET", "/health")[0] == 200  # an idle keep-alive connection
    thread, out = held(server, body)
    stopper, cut = background(server.stop)
    wait_for(lambda: server.stopping, "stop to begin")
    gate.opened.set()  # the request in flight finishes during the drain
    thread.join()
    stopper.join()
    status, response, payload = out[0]
    assert status == 200 and payload["scores"] == [1.0]
    assert response.getheader("Connection") == "close"
    assert cut == [0]
    with pytest.raises(ConnectionRefusedError):
        Client(server).request("GET", "/health")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        idle.request("GET", "/health")  # the idle connection was closed
    assert server.scorer.score([body["items"][0]]) == [0.0]  # the scorer is closed


def test_stop_answers_503_to_requests_that_outlast_the_drain(
    catalog: tuple[Path, dict[str, str]],
    samples: dict[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, gate, body = gated(catalog, samples, monkeypatch, drain_timeout_s=0.2)
    thread, out = held(server, body)
    try:
        assert server.stop() == 1
        thread.join()
        status, response, payload = out[0]
        assert status == 503 and "shutting down" in payload["error"]
        assert response.getheader("Connection") == "close"
        assert server.stop() == 0  # idempotent
    finally:
        gate.opened.set()


# -- the command ------------------------------------------------------------------------------------------


def test_resyn_serve_answers_and_stops_cleanly_on_sigterm(
    catalog: tuple[Path, dict[str, str]], samples: dict[str, list[dict[str, Any]]]
) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "RESYN_CATALOG"} | {"COLUMNS": "200"}
    command = [sys.executable, "-m", "resyn", "serve", "--catalog", str(catalog[0]), "--port", "0"]
    proc = subprocess.Popen(
        [*command, "--workers-per-env", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=environ,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("resyn serve: listening on http://127.0.0.1:"), line
        port = int(line.split("http://127.0.0.1:")[1].split()[0])
        assert f"({len(catalog[1])} environments)" in line
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        sample = samples["sort"][0]
        data = json.dumps({"items": [item(catalog[1]["sort"], sample, answer(sample["gold"]))]})
        conn.request("POST", "/score", body=data, headers={"Content-Type": "application/json"})
        assert json.loads(conn.getresponse().read())["scores"] == [1.0]
        conn.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "SIGTERM: stopping" in lines[0], err


def test_resyn_serve_start_up_errors(tmp_path: Path, catalog: tuple[Path, dict[str, str]]) -> None:
    assert_one_line_error(resyn("serve", "--catalog", str(tmp_path / "missing.duckdb")), "no catalog")
    empty = tmp_path / "empty.duckdb"
    Catalog.open(empty).close()
    assert_one_line_error(resyn("serve", "--catalog", str(empty)), "no environments with status 'accepted'")
    assert_one_line_error(resyn("serve", "--catalog", str(catalog[0]), "--env", "no-such-env"), "no-such-env")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = resyn("serve", "--catalog", str(catalog[0]), "--port", str(port))
    assert_one_line_error(result, f"port {port} on 127.0.0.1 is in use: pass another --port")
