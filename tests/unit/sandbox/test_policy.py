"""The static check refuses escape constructs by their full dotted path and lets ordinary analysis code through."""

from __future__ import annotations

import pytest

from backend.sandbox import policy

ALLOWED = [
    "import pandas as pd\ndf = pd.read_csv('sales.csv')\nprint(df.groupby('region')['amount'].sum())",
    "import numpy as np\nx = np.arange(10)\nprint(x.mean())",
    "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.savefig('plot.png')",
    "import os\nprint(os.listdir('.'))\nprint(os.path.join('data', 'x.csv'))",
    "from pathlib import Path\nprint(Path('out.txt').write_text('hi'))",
    "print(pd.__version__)",
    "class A:\n    def __init__(self):\n        super().__init__()\n",
    "if __name__ == '__main__':\n    print('main')",
    "parts = 'a/b/c'.split('/')\nprint('/'.join(parts))",
    "print(getattr(obj, 'mean')())",
    "open('/sandbox/work/result.csv', 'w').write('x')",
    "import json, math, statistics, re, datetime, collections",
    "from sklearn.linear_model import LinearRegression",
    "import sys\nprint(sys.version)",
]

BLOCKED = [
    ("import os\nos.system('ls')", "os.system"),
    ("import os as o\no.system('ls')", "os.system"),
    ("from os import system\nsystem('ls')", "os.system"),
    ("from os import system as run_it\nrun_it('ls')", "os.system"),
    ("import os\nf = os.popen", "os.popen"),
    ("import os\nos.execv('/bin/sh', ['sh'])", "os.execv"),
    ("import os\nos.spawnlp(0, 'sh', 'sh')", "os.spawnlp"),
    ("import os\nos.fork()", "os.fork"),
    ("import os\nos.kill(1, 9)", "os.kill"),
    ("import os\nos.symlink('/etc/passwd', 'p')", "os.symlink"),
    ("import subprocess", "import subprocess"),
    ("from subprocess import run", "subprocess"),
    ("import socket", "import socket"),
    ("import urllib.request", "import urllib.request"),
    ("import http.client", "import http.client"),
    ("import ctypes", "import ctypes"),
    ("from multiprocessing import Pool", "multiprocessing"),
    ("import importlib\nimportlib.import_module('os')", "import importlib"),
    ("import builtins", "import builtins"),
    ("import pickle", "import pickle"),
    ("import sys\nsys.modules['os'].system('id')", "sys.modules"),
    ("__import__('os')", "__import__"),
    ("eval('1+1')", "eval"),
    ("exec('x=1')", "exec"),
    ("compile('1', 'f', 'eval')", "compile"),
    ("globals()['__builtins__']", "globals"),
    ("().__class__.__base__.__subclasses__()", "__class__"),
    ("x = [].__class__.__mro__", "__mro__"),
    ("f = (lambda: 0).__globals__", "__globals__"),
    ("print(__builtins__)", "__builtins__"),
    ("getattr(obj, '__class__')", "'__class__'"),
    ("getattr(os, 'sys' + 'tem')", "getattr() with a computed name"),
    ("import operator\noperator.attrgetter('x')", "operator.attrgetter"),
    ("open('/etc/passwd').read()", "/etc/passwd"),
    ("open('../other/work/x.csv')", "../other"),
    ("import pandas as pd\npd.read_csv('/home/user/secret.csv')", "/home/user/secret.csv"),
    ("from pathlib import Path\nPath('x').symlink_to('/etc')", ".symlink_to"),
    ("import gc\ngc.get_objects()", "import gc"),
    ("import asyncio", "import asyncio"),
    ("from . import sibling", "from ."),
    ("def f():\n    yield 1\ng = f()\ng.gi_frame.f_globals", ".gi_frame"),
    ("breakpoint()", "breakpoint"),
]


@pytest.mark.parametrize("code", ALLOWED)
def test_ordinary_analysis_code_passes(code: str) -> None:
    assert policy.check(code) == []


@pytest.mark.parametrize(("code", "expected"), BLOCKED)
def test_escape_construct_is_blocked_with_its_name(code: str, expected: str) -> None:
    violations = policy.check(code)
    assert violations, f"not blocked: {code!r}"
    assert expected in policy.explain(violations)


def test_dotted_path_is_resolved_through_an_alias_not_only_the_top_level_name() -> None:
    violations = policy.check("import os\nprint(os.getcwd())\nos.system('id')")
    assert [v.what for v in violations] == ["os.system"]
    assert violations[0].line == 3


def test_explanation_gives_the_llm_an_actionable_hint() -> None:
    text = policy.explain(policy.check("import os\nos.system('ls')"))
    assert text.startswith("blocked: os.system (line 2)")
    assert "workdir" in text


def test_syntax_errors_are_left_to_the_interpreter() -> None:
    assert policy.check("def broken(:\n") == []
