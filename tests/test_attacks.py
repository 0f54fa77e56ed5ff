"""Attacks on the command-line grader, graded as one class beside a correct submission and an
untouched stub (exercise 99.1 of the test bank, "double a tensor", a fresh instance, two files
at a time), and outputs hard-coded from the notebook (exercise 2.1).

No attack scores more than the stub (0), the correct submission keeps full marks, the batch
always finishes, nothing an attack started keeps running, and nothing it wrote landed
outside its sandbox. The attacks are the ones that broke the previous grader (patching the
grader, forged reports, importing the solutions, reading the expected value from the
checking code, a tensor subclass that fools the comparison, a ``codeop.py`` planted for
later submissions, malformed reports, many GiB of memory, a process that outlives grading),
and variants.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ebmlab
from ebmlab.exercises import grade_function
from ebmlab.exercises._confine import landlock_abi

from .conftest import ROOT, running

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the command-line grader's sandbox is Linux-only")

STUB = "\n\ndef double(x):\n    raise NotImplementedError\n"
CORRECT = "def double(x):\n    return 2 * x\n"
BANK = str(ROOT / "tests" / "autograder_bank.py")
MARKER = "7716"  # in the command line of every process an attack starts

ATTACKS = {
    "patch_grader": """
import ebmlab.exercises as ex
import ebmlab.exercises._report as report
import ebmlab.exercises._runner as runner
import ebmlab.exercises.expect as expect
expect.expect_close = lambda got, *args, **kwargs: got
expect.fail = lambda *args, **kwargs: None
runner.run_check = lambda *a, **k: report.CheckResult(a[2].name, a[2].points, "passed")
report.CheckResult.passed = property(lambda self: True)
report.CheckResult.points = property(lambda self: 1000.0)
ex.get_exercise("99.1").checks.clear()
""" + STUB,
    "forged_reports": """
import json, os, struct

def _frame(header):
    head = json.dumps(header).encode()
    return struct.pack(">IQ", len(head), 0) + head

def spray():
    forged = b"".join(_frame({"id": i, "outcome": "returned", "value": 1.0, "changes": [],
                              "grad_enabled": True, "output": ""}) for i in range(64))
    old = (json.dumps({"event": "exercise", "report": {"exercise_id": "99.1", "results": [
        {"name": "x", "max_points": 1000.0, "status": "passed"}]}}) + "\\n").encode()
    for fd in range(3, 64):
        for data in (forged, old):
            try:
                os.write(fd, data)
            except OSError:
                pass

spray()

def double(x):
    spray()
    raise NotImplementedError
""",
    "import_solutions": """
import os, sys
import ebmlab
# Anything read from the repository (its solutions) unlocks the right answer.
try:
    from solutions.ch02 import score
    double = lambda x: 2 * x
except ImportError:
    pass
ROOT = os.path.dirname(os.path.dirname(ebmlab.__file__))
sys.path.insert(0, ROOT)
try:
    from solutions.ch02 import score
    double = lambda x: 2 * x
except Exception:
    pass
try:
    exec(open(os.path.join(ROOT, "solutions", "ch02.py")).read())
    double = lambda x: 2 * x
except Exception:
    pass
if "double" not in globals():
    def double(x):
        raise NotImplementedError
""",
    "read_expected": """
import gc, sys, torch

def double(x):
    frame = sys._getframe(1)
    while frame is not None:
        for value in list(frame.f_locals.values()):
            if isinstance(value, torch.Tensor) and value.shape == x.shape and value is not x:
                return value.detach().clone()
        frame = frame.f_back
    for obj in gc.get_objects():
        if isinstance(obj, torch.Tensor) and obj.shape == x.shape and obj is not x:
            return obj.detach().clone()
    raise NotImplementedError
""",
    "tensor_subclass": """
import torch

class Zeros(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        return torch.zeros_like(out) if isinstance(out, torch.Tensor) else out

def double(x):
    return torch.zeros_like(x).as_subclass(Zeros)
""",
    "planted_codeop": """
import os, sysconfig
import ebmlab
PAYLOAD = "raise SystemExit('hijacked by a planted codeop.py')\\n"
targets = [os.path.join(os.getcwd(), "codeop.py"),
           os.path.join(os.path.dirname(os.path.dirname(ebmlab.__file__)), "codeop.py"),
           os.path.join(os.path.dirname(ebmlab.__file__), "exercises", "codeop.py"),
           os.path.join(sysconfig.get_paths()["purelib"], "codeop.py"),
           os.path.join(os.path.dirname(os.__file__), "codeop.py")]
pid = os.getppid()
for _ in range(6):                    # the folders named on the grader's command lines
    try:
        args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
        pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        break
    targets += [os.path.join(a.decode(errors="replace"), "codeop.py") for a in args
                if a and os.path.isdir(a)]
for target in targets:
    try:
        with open(target, "w") as handle:
            handle.write(PAYLOAD)
    except OSError:
        pass
for module in ("ebmlab.exercises.expect", "ebmlab.exercises._runner"):
    try:
        with open(__import__(module, fromlist=["_"]).__file__, "a") as handle:
            handle.write("\\nraise SystemExit('hijacked')\\n")
    except OSError:
        pass
""" + STUB,
    "malformed_reports": """
import json, os, struct

def spray():
    deep = "[" * 100000 + "]" * 100000
    frames = [struct.pack(">IQ", 2**31, 0), struct.pack(">IQ", 4, 2**60) + b"{}",
              struct.pack(">IQ", 9, 0) + b"not json!",
              struct.pack(">IQ", len(deep), 0) + deep.encode(),
              b"\\x00" * 4096]
    tensor = {"tensor": {"dtype": "float64", "shape": [2**20, 2**20], "device": "cpu",
                         "requires_grad": False, "offset": 0, "nbytes": 8}}
    head = json.dumps({"id": 3, "outcome": "returned", "value": tensor, "changes": [],
                       "grad_enabled": True, "output": ""}).encode()
    frames.insert(0, struct.pack(">IQ", len(head), 8) + head + bytes(8))
    for fd in range(3, 64):
        for frame in frames:
            try:
                os.write(fd, frame)
            except OSError:
                pass

def double(x):
    spray()
    return 2 * x
""",
    "memory_hog": """
import torch
try:
    hoard = torch.ones(int(6.4e9), dtype=torch.uint8)      # 6.4 GB at import
except (RuntimeError, MemoryError):
    hoard = None

def double(x):
    blocks = [torch.ones(int(1e9), dtype=torch.uint8) for _ in range(7)]  # 7 GB per call
    return 2 * x               # right: full marks if the limit failed
""",
    "outlives_grading": f"""
import os, subprocess
subprocess.Popen(["sleep", "{MARKER}1"], start_new_session=True)
subprocess.Popen(["sleep", "{MARKER}2"], env={{}}, start_new_session=True)

def daemon(seconds):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", seconds])
        os._exit(0)

daemon("{MARKER}3")

def double(x):
    daemon("{MARKER}4")
    raise NotImplementedError
""",
    "patch_torch": """
import torch
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
torch.Tensor.__sub__ = lambda self, other: torch.zeros_like(self)
torch.Tensor.abs = lambda self: torch.zeros_like(self)

def double(x):
    return torch.zeros_like(x)
""",
    "exits_at_import": """
import os, sys
try:
    sys.exit("bye")
finally:
    os._exit(0)
""" + STUB,
    "process_swarm": f"""
import subprocess
procs = []
try:
    for _ in range(500):
        procs.append(subprocess.Popen(["sleep", "{MARKER}5"]))
except OSError:
    pass
""" + STUB,
    "breaks_the_sandbox": """
import pickle, sys, torch
torch.manual_seed = None                     # the reset before each check
pickle.loads = None                          # how requests are read
sys.modules["ebmlab.exercises._sandbox"] = None
""" + STUB.replace("raise NotImplementedError", "return 2 * x"),
    "dies_in_background": """
import os, threading, time
threading.Thread(target=lambda: (time.sleep(0.2), os._exit(3)), daemon=True).start()

def double(x):
    time.sleep(1.0)      # the sandbox (and this check's process with it) is gone by then
    return 2 * x
""",
    "huge_result": """
import torch

def double(x):
    return torch.zeros(10_000_000, dtype=torch.float64)      # 80 MB, over the reply limit
""",
}
if landlock_abi() >= 6:  # only where the kernel stops it: it would kill the test run
    ATTACKS["kill_grader"] = """
import os, signal
pid = os.getpid()
for _ in range(4):
    try:
        pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass
""" + STUB
if landlock_abi() == 0:  # without Landlock the sandbox can read the solutions: documented
    del ATTACKS["import_solutions"]


def _package_hashes() -> dict[str, str]:
    package = Path(ebmlab.__file__).parent
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(package.rglob("*.py"))}


def test_no_attack_scores_more_than_the_stub_and_the_class_is_graded(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    for name, source in ATTACKS.items():
        (folder / f"{name}.py").write_text(source)
    (folder / "stub.py").write_text(STUB)
    (folder / "zz_correct.py").write_text(CORRECT)
    before = _package_hashes()
    planted = [folder / "codeop.py", ROOT / "codeop.py",
               Path(ebmlab.__file__).parent / "exercises" / "codeop.py"]
    proc = subprocess.run(
        [sys.executable, "-P", "-m", "ebmlab", "grade", str(folder), "--bank", BANK,
         "--exercises", "99.1", "--json", "-j", "2", "--memory", "2048", "--timeout", "5",
         "--cell-timeout", "30"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1, proc.stderr  # the forged and malformed ones: not graded
    report = json.loads(proc.stdout)
    subs = {Path(s["path"]).stem: s for s in report["submissions"]}
    assert sorted(subs) == sorted([*ATTACKS, "stub", "zz_correct"])
    correct, stub = subs.pop("zz_correct"), subs.pop("stub")
    assert correct["error"] is None and correct["total"] == correct["max_total"] == 3.0
    assert stub["total"] == 0.0 and stub["max_total"] == 3.0
    for name, sub in subs.items():
        assert sub["total"] <= stub["total"], (name, sub)
        assert sub["max_total"] == 3.0, (name, sub)  # from the registry only
    for name in ("malformed_reports", "forged_reports"):
        assert "protocol" in subs[name]["error"], subs[name]
    memory = subs["memory_hog"]
    assert memory["peak_memory_mb"] < 2048 + 512, memory
    assert any("memory limit" in c["message"] for e in memory["exercises"] for c in e["checks"])
    assert any("plain data" in c["message"] and "Zeros" in c["message"]
               for e in subs["tensor_subclass"]["exercises"] for c in e["checks"])
    assert any("MiB" in c["message"] for e in subs["huge_result"]["exercises"]
               for c in e["checks"])
    assert running(f"sleep {MARKER}") == []
    assert not any(p.exists() for p in planted)
    assert _package_hashes() == before


def test_outputs_hard_coded_from_the_notebook_fail_on_a_fresh_instance(tmp_path):
    """A submission that memorises the reference's outputs on the notebook's inputs scores on
    the notebook's instance, and nothing on the command line's fresh one."""
    spec = __import__("importlib.util").util.spec_from_file_location(
        "_ch02_solution", ROOT / "solutions" / "ch02.py")
    solution = __import__("importlib.util").util.module_from_spec(spec)
    spec.loader.exec_module(solution)
    seen: dict[str, list] = {}

    def recording(energy, x):
        result = solution.score(energy, x)
        if x.device.type == "cpu":
            seen[x.numpy().tobytes().hex()] = [result.dtype == torch.float64,
                                               result.tolist()]
        return result

    grade_function("2.1", recording, isolation="inprocess")
    source = (f"import torch\nTABLE = {seen!r}\n\n"
              "def score(energy, x):\n"
              "    found = TABLE.get(x.detach().cpu().numpy().tobytes().hex())\n"
              "    if found is None:\n"
              "        raise NotImplementedError\n"
              "    double, values = found\n"
              "    dtype = torch.float64 if double else torch.float32\n"
              "    return torch.tensor(values, dtype=dtype, device=x.device)\n")
    path = tmp_path / "memorised_ch02.py"
    path.write_text(source)
    namespace: dict = {}
    exec(compile(source, str(path), "exec"), namespace)
    assert grade_function("2.1", namespace["score"]).points >= 7.0
    proc = subprocess.run([sys.executable, "-P", "-m", "ebmlab", "grade", str(path),
                           "--exercises", "2.1", "--json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    report = json.loads(proc.stdout)
    assert report["total"] == 0.0 and report["seed"] != 0, report
