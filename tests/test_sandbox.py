"""The grader's boundary: framing, the safe codec, mirrored side effects, disabled library
shortcuts, and the confinement of a spawned sandbox (limits, Landlock, nothing left
running)."""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import ebmlab
from ebmlab.exercises import Limits
from ebmlab.exercises._confine import landlock_abi
from ebmlab.exercises._mirror import Snapshot, apply_changes, watched
from ebmlab.exercises._sandbox import RunCell, shortcuts_disabled
from ebmlab.exercises._student import accept_device
from ebmlab.exercises._supervisor import Sandbox
from ebmlab.exercises._wire import (
    MAX_HEADER,
    Channel,
    ChannelClosed,
    ChannelTimeout,
    Encoder,
    ProtocolError,
    Unencodable,
    decode,
)

from .conftest import running

LINUX = sys.platform.startswith("linux")


def _pair() -> tuple[Channel, Channel]:
    """Two channels talking to each other over two pipes (the first accepts 64 KiB bodies)."""
    a_read, b_write = os.pipe()
    b_read, a_write = os.pipe()
    return Channel(a_read, a_write, max_body=1 << 16), Channel(b_read, b_write)


def _round_trip(value: object) -> object:
    encoder = Encoder()
    tree = json.loads(json.dumps(encoder.encode(value)))
    return decode(tree, encoder.body, accept_device)


# --- framing --------------------------------------------------------------------------
def test_frames_round_trip_and_oversized_or_malformed_frames_are_refused():
    a, b = _pair()
    b.send({"id": 1, "text": "héllo"}, b"\x00\x01")
    frame = a.receive(deadline=time.monotonic() + 5)
    assert frame.header == {"id": 1, "text": "héllo"} and frame.body == b"\x00\x01"
    with pytest.raises(ChannelTimeout):
        a.receive(deadline=time.monotonic() + 0.2)
    os.write(b.write_fd, struct.pack(">IQ", 10, 0) + b"{")  # then the writer goes away
    b.close()
    with pytest.raises(ChannelClosed):
        a.receive(deadline=time.monotonic() + 5)
    a.close()
    for prefix, payload, words in [
        (struct.pack(">IQ", MAX_HEADER + 1, 0), b"", "header of"),
        (struct.pack(">IQ", 2, (1 << 16) + 1), b"{}", "body of"),
        (struct.pack(">IQ", 5, 0), b"[1,2]", "not a JSON object"),
        (struct.pack(">IQ", 4, 0), b"\xff\xfe{}", "not JSON"),
        (struct.pack(">IQ", 4000, 0), b"[" * 4000, "not JSON"),
    ]:
        a, b = _pair()
        os.write(b.write_fd, prefix + payload)
        with pytest.raises(ProtocolError, match=words):
            a.receive(deadline=time.monotonic() + 5)
        a.close()
        b.close()


# --- the codec ------------------------------------------------------------------------
def test_plain_data_round_trips_into_fresh_exact_tensors():
    tensors = [torch.arange(6.0).to(dtype).reshape(2, 3) for dtype in (
        torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.int16,
        torch.int32, torch.int64, torch.uint8, torch.complex64, torch.complex128)]
    value = {"tensors": tensors, "empty": torch.zeros(0, 4), "scalar": torch.tensor(2.5),
             "bool": torch.tensor([True, False]), "grad": torch.ones(2, requires_grad=True),
             "meta": torch.empty(3, 5, device="meta"), "strided": torch.arange(12.0).view(3, 4).T,
             1: (None, True, -7, 2**70, float("nan"), "é"), "nested": [[[1.5]]],
             "numpy scalar": np.float64(0.25), "size": torch.Size([2, 3])}
    out = _round_trip(value)
    assert isinstance(out, dict) and out[1][:4] == (None, True, -7, 2**70)
    assert np.isnan(out[1][4]) and out[1][5] == "é" and out["nested"] == [[[1.5]]]
    assert out["numpy scalar"] == 0.25 and out["size"] == (2, 3)
    for got, sent in zip(out["tensors"], tensors, strict=True):
        assert type(got) is torch.Tensor and got.dtype == sent.dtype and torch.equal(got, sent)
    assert torch.equal(out["strided"], value["strided"]) and out["empty"].shape == (0, 4)
    assert out["grad"].requires_grad and out["grad"].is_leaf
    assert out["meta"].device.type == "meta" and out["meta"].shape == (3, 5)


@pytest.mark.parametrize(("value", "words"), [
    (np.zeros(3), "numpy.ndarray"),
    (torch.nn.Parameter(torch.zeros(2)), "Parameter (a subclass of torch.Tensor)"),
    (object(), "a object"),
    ({(1, 2): 3}, "a dict with a key of type tuple"),
    (torch.zeros(2, 2).to_sparse(), "layout torch.sparse_coo"),
    (torch.zeros(2, dtype=torch.uint16), "dtype torch.uint16"),
    ([[]] * 1 + [None] * 30_000, "more than"),
    (torch.zeros(1 << 25, dtype=torch.float64), "MiB in total"),
    ("x" * (1 << 19), "characters"),
])
def test_anything_but_plain_data_is_unencodable_with_its_type_named(value, words):
    deep: list = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(Unencodable, match="nested more than"):
        Encoder().encode(deep)
    with pytest.raises(Unencodable, match=re.escape(words)):
        Encoder(max_bytes=64 << 20).encode(value)


def test_malformed_values_from_a_sandbox_are_protocol_errors():
    good = {"dtype": "float32", "shape": [2], "device": "cpu", "requires_grad": False,
            "offset": 0, "nbytes": 8}
    body = bytes(8)
    assert decode({"tensor": good}, body, accept_device).shape == (2,)
    for change in [{"nbytes": 7}, {"offset": 4}, {"dtype": "object"}, {"shape": [-1]},
                   {"shape": [True]}, {"shape": [2] * 17}, {"device": "tpu"},
                   {"device": "cuda:99"}, {"shape": [1 << 30, 1 << 30], "device": "meta",
                                           "nbytes": 0}, {"requires_grad": "yes"}]:
        with pytest.raises(ProtocolError):
            decode({"tensor": good | change}, body, accept_device)
    for tree in [{"tensor": {"dtype": "float32"}}, {"tuple": 3}, {"dict": [[1]]},
                 {"dict": [[{"list": []}, 1]]}, {"other": []}, {"a": 1, "b": 2}, [1, 2]]:
        with pytest.raises(ProtocolError):
            decode(tree, body, accept_device)
    deep: object = 1
    for _ in range(40):
        deep = {"list": [deep]}
    with pytest.raises(ProtocolError, match="too deeply"):
        decode(deep, b"", accept_device)


# --- mirrored side effects --------------------------------------------------------------
class _Recorder:
    __mirror__ = ("seen",)

    def __init__(self) -> None:
        self.seen: list[int] = []


def test_side_effects_in_the_sandbox_are_mirrored_onto_the_checks_objects():
    net = torch.nn.Linear(2, 1)
    x = torch.ones(3, 2)
    g = torch.Generator().manual_seed(0)
    recorder = _Recorder()
    args = (net, {"x": x, "again": x}, [g, recorder], torch.zeros(2))
    objects = watched((args, {}))
    assert len(objects) == 6  # weight, bias, x once, generator, recorder, zeros
    copy = pickle.loads(pickle.dumps((args, {})))
    remote = watched(copy)
    assert [type(o) for o in remote] == [type(o) for o in objects]
    snapshot = Snapshot(remote)
    r_net, r_inputs, (r_g, r_recorder), _ = copy[0]
    r_net(r_inputs["x"]).sum().backward()
    r_inputs["x"].mul_(2).requires_grad_(True)
    torch.rand(3, generator=r_g)
    r_recorder.seen.append(7)
    encoder = Encoder()
    changes = json.loads(json.dumps(snapshot.changes(encoder)))
    apply_changes(objects, changes, encoder.body, accept_device)
    assert torch.equal(x, torch.full((3, 2), 2.0)) and x.requires_grad
    assert net.weight.grad is not None and net.bias.grad is not None
    assert torch.equal(g.get_state(), r_g.get_state()) and recorder.seen == [7]
    for bad in [[{"index": 9, "value": None}], [{"index": True}], "x",
                [{"index": 4, "attrs": [["__class__", 1]]}],
                [{"index": 3, "state": {"dtype": "float32", "shape": [1], "device": "cpu",
                                        "requires_grad": False, "offset": 0, "nbytes": 4}}]]:
        with pytest.raises(ProtocolError):
            apply_changes(objects, bad, bytes(4), accept_device)


# --- library shortcuts ----------------------------------------------------------------
def test_library_shortcuts_raise_also_through_references_bound_earlier():
    bound = ebmlab.score_of
    method = ebmlab.GaussianMixture.score
    x = torch.zeros(2, 2)
    with shortcuts_disabled(("ebmlab.score_of", "ebmlab.GaussianMixture.score",
                             "ebmlab.no_such_function", "torch.logsumexp"), "2.1"):
        with pytest.raises(RuntimeError, match=r"ebmlab\.score_of solves exercise 2\.1"):
            bound(lambda y: y.sum(-1), x)
        with pytest.raises(RuntimeError, match="write it yourself"):
            method(ebmlab.GaussianMixture(torch.zeros(1, 2)), x)
        with pytest.raises(RuntimeError, match=r"torch\.logsumexp solves"):
            torch.logsumexp(x, 0)
    assert torch.equal(bound(lambda y: 0.5 * (y ** 2).sum(-1), x), torch.zeros(2, 2))
    assert torch.logsumexp(torch.zeros(1), 0) == 0


# --- the spawned sandbox --------------------------------------------------------------
needs_linux = pytest.mark.skipif(not LINUX, reason="the confined sandbox is Linux-only")


def _run(sandbox: Sandbox, source: str, timeout: float = 60) -> str | None:
    """Execute ``source`` as a cell in the sandbox; returns the cell's error, if any."""
    reply = sandbox.request(RunCell(source, "<test>"), timeout=timeout)
    return reply.header["error"]


@needs_linux
def test_sandbox_cannot_reach_the_repository_or_the_grader():
    limits = Limits(memory_bytes=1 << 30)
    with Sandbox.spawn(limits=limits) as sandbox:
        assert any("resource limits" in p for p in sandbox.protections)
        assert _run(sandbox, "import torch, ebmlab\nx = torch.ones(2)") is None
        assert _run(sandbox, "import solutions").startswith("ModuleNotFoundError")
        assert _run(sandbox, "import sys; assert '' not in sys.path, sys.path") is None
        assert _run(sandbox, "open('scratch.txt', 'w').write('ok')") is None
        root = Path(ebmlab.__file__).resolve().parents[1]
        assert _run(sandbox, "torch.empty(int(3e9), dtype=torch.uint8).fill_(1)") is not None
        if landlock_abi() >= 1:
            assert any("Landlock" in p for p in sandbox.protections)
            for path in (root / "solutions" / "ch02.py", root / "tests" / "conftest.py"):
                assert _run(sandbox, f"open({str(path)!r}).read()").startswith(
                    "PermissionError")
            for path in (Path(ebmlab.__file__).parent / "codeop.py", root / "codeop.py",
                         Path(torch.__file__).parent / "x.py"):
                assert _run(sandbox, f"open({str(path)!r}, 'w')").startswith("PermissionError")
                assert not path.exists()
        if landlock_abi() >= 6:
            for pid in (os.getpid(), sandbox.process.pid):  # the grader and the keeper
                assert _run(sandbox, f"import os, signal; os.kill({pid}, signal.SIGKILL)"
                            ).startswith("PermissionError")
        if landlock_abi() >= 4:
            assert _run(sandbox, "import socket; socket.create_connection(('127.0.0.1', 9), "
                                 "timeout=2)").startswith("PermissionError")
    assert sandbox.peak_memory_kb is not None and sandbox.peak_memory_kb < 1.2 * 2**20


@needs_linux
def test_sandbox_limits_file_size_processes_and_cpu_time():
    limits = Limits(file_bytes=1 << 20, processes=32, cpu_seconds=8)
    with Sandbox.spawn(limits=limits) as sandbox:
        assert _run(sandbox, "open('big', 'wb').write(bytes(2 << 20))").startswith("OSError")
        bomb = ("import subprocess\nprocs = []\nfor _ in range(200):\n"
                "    procs.append(subprocess.Popen(['sleep', '8765']))")
        error = _run(sandbox, bomb)
        assert error is not None and "Resource temporarily unavailable" in error
        assert 0 < len(running("sleep 8765")) < 64
        with pytest.raises(Exception, match="SIGXCPU"):
            _run(sandbox, "while True:\n    pass", timeout=30)
    assert running("sleep 8765") == []


@needs_linux
def test_nothing_started_by_the_sandbox_is_leftrunning():
    escape = """
import os, subprocess, sys, time
subprocess.Popen(['sleep', '9871'], start_new_session=True)
subprocess.Popen(['sleep', '9872'], env={}, start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if os.fork() == 0:          # a daemon: double fork, new session, parent gone
    os.setsid()
    if os.fork() == 0:
        os.execvp('sleep', ['sleep', '9873'])
    os._exit(0)
time.sleep(0.5)
"""
    sandbox = Sandbox.spawn(limits=Limits())
    assert _run(sandbox, escape) is None
    assert len(running("sleep 987")) == 3
    sandbox.close()
    assert running("sleep 987") == []
