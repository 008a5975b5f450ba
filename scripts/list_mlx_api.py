#!/usr/bin/env python3
"""List the public API of the installed MLX Python package, grouped by module.

This is the source of truth for docs/COMPAT.md: every name printed here has one
row in that table, under the same qualified spelling (`mx.zeros`,
`array.shape`, `mx.random.normal`, `nn.Linear`, `optim.Adam`, ...).

Usage:
    python3 scripts/list_mlx_api.py                      # names grouped by module
    python3 scripts/list_mlx_api.py --json               # the same as JSON
    python3 scripts/list_mlx_api.py --check docs/COMPAT.md

--check compares the table with the installed MLX. It reads the rows of every
table headed `| MLX | mlx-bun | status | notes |` whose first cell is a
backquoted name, and prints the MLX names the table lacks, the rows MLX no
longer has, names listed twice, and the status counts of each `##` section
(the summary at the top of the table). It exits 1 when the table and MLX
differ.

Needs the MLX Python package (`pip install "mlx[cpu]"` on Linux, `pip install
mlx` on macOS). mlx.nn, mlx.optimizers and mlx.utils are pure Python and are
imported here too.

Each name is printed with its kind and, where the rule applies, the mlx-bun
spelling (snake_case -> camelCase). Flags mark names that cannot keep that
spelling as-is in TypeScript:
    [js-reserved]  a JS reserved word, or a binding strict-mode code forbids
                   (`eval`, `var`): fine as `mx.eval(...)`, not as `import { eval }`
    [js-global]    a class that shadows a JS/TS global when imported by name (`ArrayLike`)
    [js-builtin]   an mx.array member whose name a JS Array/Object already uses (`at`)
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import types

# Words JS reserves, plus the two names strict-mode code (every ES module) cannot bind.
JS_RESERVED = set(
    """break case catch class const continue debugger default delete do else enum
    export extends false finally for function if import in instanceof new null
    return super switch this throw true try typeof var void while with yield let
    static implements interface package private protected public await
    eval arguments""".split()
)
# Globals (JS runtime and TypeScript lib types) a named import would shadow.
JS_GLOBALS = set(
    """Array ArrayBuffer ArrayLike BigInt Boolean DataView Date Error Function
    Iterator JSON Map Math Number Object Promise Proxy Reflect RegExp Set String
    Symbol WeakMap WeakRef WeakSet""".split()
)
# Members of Array.prototype and Object.prototype (an mx.Array should not
# silently change what these mean).
JS_ARRAY_MEMBERS = set(
    """at concat copyWithin entries every fill filter find findIndex findLast
    findLastIndex flat flatMap forEach includes indexOf join keys lastIndexOf
    length map pop push reduce reduceRight reverse shift slice some sort splice
    toLocaleString toReversed toSorted toSpliced toString unshift values with
    constructor hasOwnProperty isPrototypeOf propertyIsEnumerable valueOf""".split()
)

# mx.array dunders that are Python object plumbing with nothing to map.
ARRAY_SKIP = {
    "__class__", "__doc__", "__init__", "__init_subclass__", "__module__", "__new__",
    "__subclasshook__",
}


def camel(name: str) -> str:
    """MLX snake_case -> mlx-bun camelCase (`value_and_grad` -> `valueAndGrad`)."""
    if name.startswith("__") or "_" not in name.strip("_"):
        return name
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest if p)


def public(obj) -> list[str]:
    return sorted(n for n in dir(obj) if not n.startswith("_"))


def kind_of(obj) -> str:
    import mlx.core as mx

    if isinstance(obj, mx.Dtype):
        return "dtype"
    if isinstance(obj, mx.DtypeCategory):
        return "dtype-category"
    if isinstance(obj, mx.DeviceType):
        return "device-type"
    if inspect.isclass(obj):
        return "class"
    if isinstance(obj, (int, float)) or obj is None:
        return "constant"
    if callable(obj):
        return "function"
    return type(obj).__name__


def native_group(mod) -> list[tuple[str, str]]:
    """Every public name of a compiled (nanobind) module, minus its submodules."""
    out = []
    for n in public(mod):
        obj = getattr(mod, n)
        if isinstance(obj, types.ModuleType):
            continue
        out.append((n, kind_of(obj)))
    return out


def python_group(mod, owner: str, exclude=()) -> list[tuple[str, str]]:
    """Public names a pure-Python module defines under `owner` (no re-exports, no submodules)."""
    out = []
    for n in public(mod):
        obj = getattr(mod, n)
        if isinstance(obj, types.ModuleType) or n in exclude:
            continue
        where = getattr(obj, "__module__", "") or ""
        if not where.startswith(owner):
            continue
        out.append((n, kind_of(obj)))
    return out


def class_members(cls, extra=()) -> list[tuple[str, str]]:
    """Public methods and properties a class defines itself (not inherited from object)."""
    out = []
    for n in sorted(vars(cls)):
        if n.startswith("_") and n not in extra:
            continue
        obj = inspect.getattr_static(cls, n)
        if isinstance(obj, property):
            out.append((n, "property"))
        elif isinstance(obj, staticmethod):
            out.append((n, "staticmethod"))
        else:
            out.append((n, "method"))
    return out


def array_members() -> list[tuple[str, str]]:
    import mlx.core as mx

    A = mx.array
    out = []
    for n in sorted(dir(A)):
        if n in ARRAY_SKIP:
            continue
        obj = getattr(A, n)
        if n.startswith("__"):
            # Keep only the operators/protocols mx.array implements itself.
            if obj is getattr(object, n, None):
                continue
            out.append((n, "operator" if n[2:-2] not in PROTOCOLS else "protocol"))
        elif not n.startswith("_"):
            static = inspect.getattr_static(A, n)
            is_prop = type(static).__name__ in ("property", "nb_property") or isinstance(static, property)
            out.append((n, "property" if is_prop else "method"))
    return out


PROTOCOLS = {
    "array", "array_namespace", "bool", "bytes", "complex", "copy", "deepcopy",
    "dlpack", "dlpack_device", "float", "format", "getstate", "setstate",
    "index", "int", "iter", "len", "repr", "getitem", "setitem",
}


def groups():
    """[(module title, row prefix, [(name, kind), ...]), ...] in table order."""
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.nn.utils as nn_utils
    import mlx.optimizers as optim
    import mlx.utils as utils

    nn_top = python_group(nn, "mlx.nn")
    nn_top_names = {n for n, _ in nn_top}
    optim_all = python_group(optim, "mlx.optimizers")
    schedulers = [
        (n, k) for n, k in optim_all
        if getattr(getattr(optim, n), "__module__", "") == "mlx.optimizers.schedulers"
    ]
    optimizers = [(n, k) for n, k in optim_all if (n, k) not in schedulers]

    return [
        ("mlx.core", "mx.", native_group(mx)),
        ("mlx.core.array", "array.", array_members()),
        ("mlx.core.random", "mx.random.", native_group(mx.random)),
        ("mlx.core.linalg", "mx.linalg.", native_group(mx.linalg)),
        ("mlx.core.fft", "mx.fft.", native_group(mx.fft)),
        ("mlx.core.fast", "mx.fast.", native_group(mx.fast)),
        ("mlx.core.distributed", "mx.distributed.", native_group(mx.distributed)),
        ("mlx.core.metal", "mx.metal.", native_group(mx.metal)),
        ("mlx.core.cuda", "mx.cuda.", native_group(mx.cuda)),
        ("mlx.nn", "nn.", nn_top),
        # Module.__call__ is what every layer defines; list it with the base class.
        ("mlx.nn.Module", "nn.Module.", class_members(nn.Module) + [("__call__", "method")]),
        ("mlx.nn.losses", "nn.losses.", python_group(nn.losses, "mlx.nn.losses")),
        ("mlx.nn.init", "nn.init.", python_group(nn.init, "mlx.nn.init")),
        ("mlx.nn.utils", "nn.utils.", python_group(nn_utils, "mlx.nn.utils", exclude=nn_top_names)),
        ("mlx.optimizers", "optim.", optimizers),
        ("mlx.optimizers.Optimizer", "optim.Optimizer.", class_members(optim.Optimizer)),
        ("mlx.optimizers (schedulers)", "optim.", schedulers),
        ("mlx.utils", "utils.", python_group(utils, "mlx.utils")),
    ]


def flags(prefix: str, name: str, kind: str) -> list[str]:
    ts = camel(name)
    out = []
    member = prefix == "array." or prefix.endswith(("Module.", "Optimizer."))
    if ts in JS_RESERVED and not member:  # `a.var()` is fine; `import { var }` is not
        out.append("[js-reserved]")
    if kind == "class" and ts in JS_GLOBALS:
        out.append("[js-global]")
    if prefix == "array." and ts in JS_ARRAY_MEMBERS:
        out.append("[js-builtin]")
    return out


def print_text(gs) -> None:
    import mlx.core as mx

    print(f"# MLX {mx.__version__} public API")
    total = 0
    for title, prefix, names in gs:
        total += len(names)
        print(f"\n## {title}  ({len(names)} names, rows spelled `{prefix}NAME`)")
        for name, kind in names:
            ts = camel(name)
            arrow = f"-> {ts}" if ts != name else ""
            extra = " ".join(flags(prefix, name, kind))
            print(f"  {name:32} {kind:15} {arrow:34} {extra}".rstrip())
    print(f"\n{total} names in all")


def print_json(gs) -> None:
    import mlx.core as mx

    data = {
        "mlx_version": mx.__version__,
        "modules": [
            {
                "module": title,
                "prefix": prefix,
                "names": [
                    {"name": n, "kind": k, "mlx_bun": camel(n), "flags": flags(prefix, n, k)}
                    for n, k in names
                ],
            }
            for title, prefix, names in gs
        ],
    }
    json.dump(data, sys.stdout, indent=1)
    print()


ROW_NAME = re.compile(r"^\|\s*`([^`]+)`")
STATUSES = ("done", "partial", "not yet", "n/a")
TABLE_HEADER = ["MLX", "mlx-bun", "status", "notes"]


def check(gs, path: str) -> int:
    """Compare the first column of every table row in `path` with the MLX names."""
    expected = {prefix + n for _, prefix, names in gs for n, _ in names}
    prefixes = tuple(sorted({p for _, p, _ in gs}, key=len, reverse=True))
    seen: dict[str, int] = {}
    counts: dict[str, dict[str, int]] = {}
    stale = []  # rows naming something MLX no longer has
    section = None
    in_table = False  # only tables with the TABLE_HEADER columns are read
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("## "):
                section = line[3:].strip()
            if not line.startswith("|"):
                in_table = False
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells == TABLE_HEADER:
                in_table = True
                continue
            m = ROW_NAME.match(line)
            if not in_table or not m:
                continue
            name = m.group(1)
            if name not in expected:
                if name.startswith(prefixes):
                    stale.append(name)
                continue
            seen[name] = seen.get(name, 0) + 1
            status = cells[2].strip("*` ") if len(cells) > 2 else ""
            bucket = next((s for s in STATUSES if status.startswith(s)), "?")
            counts.setdefault(section or "?", {}).setdefault(bucket, 0)
            counts[section or "?"][bucket] += 1

    missing = sorted(expected - seen.keys())
    twice = sorted(n for n, c in seen.items() if c > 1)
    print("| module | done | partial | not yet | n/a | total |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    grand = dict.fromkeys(STATUSES + ("?",), 0)
    for sec, c in counts.items():
        for k, v in c.items():
            grand[k] += v
        row = " | ".join(str(c.get(s, 0)) for s in STATUSES)
        print(f"| {sec} | {row} | {sum(c.values())} |")
    row = " | ".join(str(grand[s]) for s in STATUSES)
    print(f"| **all** | {row} | {sum(grand.values())} |")
    if grand["?"]:
        print(f"\n{grand['?']} rows have no recognised status ({', '.join(STATUSES)})")
    for label, items in (("missing from the table", missing),
                         ("in the table but not in MLX", stale),
                         ("listed more than once", twice)):
        if items:
            print(f"\n{len(items)} names {label}:")
            for n in items:
                print(f"  {n}")
    ok = not (missing or stale or twice or grand["?"])
    print(f"\n{len(expected)} MLX names, {len(seen)} in the table: {'ok' if ok else 'MISMATCH'}")
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of text")
    ap.add_argument("--check", metavar="COMPAT_MD", help="compare a COMPAT.md table with MLX")
    args = ap.parse_args()
    try:
        gs = groups()
    except ImportError as e:
        print(f"cannot import MLX ({e}); install it with: pip install 'mlx[cpu]'", file=sys.stderr)
        return 2
    if args.check:
        return check(gs, args.check)
    (print_json if args.json else print_text)(gs)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `| head`
        sys.stderr.close()
        sys.exit(0)
