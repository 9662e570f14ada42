"""A loopback OpenAI-compatible server for the teacher tests: /completions (text or list prompts)
and /chat/completions, `n` choices, `usage`, and scripted trouble (429/500, slow replies, bad replies).

Its teacher knows the gold answers. A rationale says which draw it is ("draw <seed>-<j>"); the
answer step reads the draw back from the rationale it is shown and answers correctly for even j
only, so a record is correct exactly when its rationale's draw is even: a test sees at once whether
answers went back to the prompts they belong to. Choices are returned in reverse order, so only
matching by `index` puts them in place.
"""

from __future__ import annotations

import collections
import http.server
import json
import re
import threading
import time
import urllib.parse

KEY = "sk-test-0123456789secret"
COT = "Let's think step by step."
_DRAW = re.compile(r"draw (\d+)-(\d+)")


def _question(text: str) -> str:
    return text[len("Q: ") : text.index("\nA: ")]


def _continue(prompt: str, j: int, body: dict, answers: dict) -> str:
    """The teacher's text for one text prompt (or a chat conversation flattened to its turns)."""
    if prompt.endswith(COT):
        question = _question(prompt)
        draw = f"draw {body.get('seed', 0)}-{j}"
        return f" The question, {draw}, has {len(question)} characters and {question.count(' ')} spaces."
    draw = _DRAW.findall(prompt)
    correct = draw and int(draw[-1][1]) % 2 == 0
    return f" {answers.get(_question(prompt), 'unknown') if correct else 'unknown'}."


def _finish(text: str, body: dict) -> tuple[str, str]:
    for stop in body.get("stop") or []:
        if stop in text:
            return text[: text.index(stop)], "stop"
    limit = body["max_tokens"] * 4
    return (text[:limit], "length") if len(text) > limit else (text, "stop")


def reply_body(body: dict, answers: dict) -> dict:
    """The server's reply to one request body (also used to fake Batch API output files)."""
    n = body.get("n", 1)
    chat = "messages" in body
    if chat:
        turns = body["messages"]
        prompts = ["".join(m["content"] if m["role"] == "user" else "\n" + m["content"] for m in turns)]
    else:
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
    choices, prompt_tokens, completion_tokens = [], 0, 0
    for i, prompt in enumerate(prompts):
        prompt_tokens += len(prompt.split())
        for j in range(n):
            text, reason = _finish(_continue(prompt, j, body, answers), body)
            completion_tokens += len(text.split())
            choice = {"index": i * n + j, "finish_reason": reason}
            choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
            choices.append(choice)
    return {
        "object": "chat.completion" if chat else "text_completion",
        "choices": choices[::-1],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class FakeOpenAI(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answers: dict[str, str], key: str | None = KEY, query: dict | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers = answers  # question text -> gold answer
        self.key = key
        self.query = query or {}  # query values every request must carry
        self.lock = threading.Lock()
        self.requests = []  # (path, body) of every request that reached the teacher
        self.plan = collections.deque()  # per request, in order: an HTTP status to fail with, or seconds to wait
        self.fail_after = None  # after this many teacher replies every request gets a 400
        self.bad_reply = None  # "no_choices", "no_text" or "not_json": every reply is broken that way
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0}  # summed over the replies sent
        self.in_flight = self.max_in_flight = 0
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def handle_error(self, request, client_address):  # a client that timed out and left: not news
        pass

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def bodies(self, step: str) -> list[dict]:
        """Bodies of the reasoning or answer requests received."""
        return [b for _, b in self.requests if _is_reasoning(b) == (step == "reasoning")]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


def _is_reasoning(body: dict) -> bool:
    if "messages" in body:
        return len(body["messages"]) == 1
    prompt = body["prompt"]
    return (prompt if isinstance(prompt, str) else prompt[0]).endswith(COT)


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def _reply(self, status: int, obj, headers=()) -> None:
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        server: FakeOpenAI = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with server.lock:
            step = server.plan.popleft() if server.plan else None
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            if isinstance(step, float):
                time.sleep(step)
            parts = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            if parts.path not in ("/v1/completions", "/v1/chat/completions") or query != server.query:
                # echoes what it got, secrets included: the client must scrub them
                return self._reply(404, {"error": {"message": f"no route for {self.path}"}})
            if server.key and self.headers.get("Authorization") != f"Bearer {server.key}":
                return self._reply(401, {"error": {"message": f"bad key {self.headers.get('Authorization')}"}})
            if isinstance(step, int):
                return self._reply(step, {"error": {"message": "try again"}}, [("Retry-After", "0")])
            with server.lock:
                if server.fail_after is not None and len(server.requests) >= server.fail_after:
                    return self._reply(400, {"error": {"message": "quota exceeded"}})
                server.requests.append((parts.path, body))
            reply = reply_body(body, server.answers)
            if server.bad_reply == "no_choices":
                reply.pop("choices")
            elif server.bad_reply == "no_text":
                for choice in reply["choices"]:
                    choice.pop("text", None)
                    choice.pop("message", None)
            elif server.bad_reply == "not_json":
                return self._reply(200, b"<html>gateway</html>")
            with server.lock:
                for k in server.usage:
                    server.usage[k] += reply["usage"][k]
            self._reply(200, reply)
        finally:
            with server.lock:
                server.in_flight -= 1
