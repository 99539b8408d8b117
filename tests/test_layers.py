"""The package's import graph flows one way. Read from the source (every import, lazy ones in
functions included; those under `if TYPE_CHECKING:` count for the layers but not for cycles):

1. no module imports, directly or through others, a module that imports it back (no cycle);
2. every top-level unit (a subpackage or module of sgdlab) imports only units of its own layer
   or below, in this order (the exact order enforced):

   foundation   errors, faults, modes, seeding, params, registry, papers, attention, version, stats,
                allocator
   config       config                            typed configs ⇄ TOML
   store        store                             what is written and read back: runs, claims,
                                                  records, sweeps, provenance, figure files
   zoo          data, models, optim, losses, gradients, curvature, ntk, toys
   probes       probes
   engine       engine                            (the loop calls the probes and the recorder)
   build        build                             config → parts
   runner       runner, two_pass, resuming, export, integrations, tune_init
   sweep        sweep                             many runs; never writes a report
   report       report                            reads the store only (below)
   experiments  experiments                       the reproductions, on the Lab
   cli          cli, __main__, and the package root `sgdlab` (its public API)

   The store sits low, right above the configs: it is the file layer the data checks (checksums),
   the engine records through (`Recorder`) and everything above reads. Data flows config →
   data/models/optim → engine → probes → store → report; imports run the other way only;
3. the report imports nothing but the store and the layers below it, and the probes' registry
   (a probe declares its own figure): `report/` only reads;
4. nothing inside imports the package root `sgdlab` (its public API is for users and the CLI).

`layer_diagram()` prints the unit graph (`python -m tests.test_layers`).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sgdlab"
LAYERS: list[tuple[str, set[str]]] = [
    (
        "foundation",
        {
            "errors",
            "faults",
            "modes",
            "seeding",
            "params",
            "registry",
            "papers",
            "attention",
            "version",
            "stats",
            "allocator",
        },
    ),
    ("config", {"config"}),
    ("store", {"store"}),
    ("zoo", {"data", "models", "optim", "losses", "gradients", "curvature", "ntk", "toys"}),
    ("probes", {"probes"}),
    ("engine", {"engine"}),
    ("build", {"build"}),
    ("runner", {"runner", "two_pass", "resuming", "export", "integrations", "tune_init"}),
    ("sweep", {"sweep"}),
    ("report", {"report"}),
    ("experiments", {"experiments"}),
    ("cli", {"cli", "__main__", "__init__"}),
]
LAYER_OF = {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}
REPORT_READS = {"foundation", "config", "store"} | {"probes"}
# Known exceptions, in packages being rewritten on other branches: each is to go when its package
# moves to the five roles (the test fails once it has gone, so that it is struck off here too).
KNOWN_ROOT_IMPORTS: set[str] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """(imported sgdlab module, whether only under TYPE_CHECKING) for every import in `path`."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = _type_checking_lines(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [
                f"{source}.{a.name}" if is_module(f"{source}.{a.name}") else source for a in node.names
            ]
        else:
            continue
        found += [
            (t, node.lineno in typing_only) for t in targets if t == "sgdlab" or t.startswith("sgdlab.")
        ]
    return found


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def graph() -> dict[str, list[tuple[str, bool]]]:
    """Module → the sgdlab modules it imports (with the TYPE_CHECKING flag)."""
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def unit_graph() -> dict[str, set[str]]:
    """Unit → the other units it imports."""
    units: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph().items():
        for target, _ in targets:
            if unit_of(target) != unit_of(module):
                units[unit_of(module)].add(unit_of(target))
    return units


def cycles() -> list[list[str]]:
    """Every import cycle between modules (runtime imports only), each as a path."""
    edges = {m: sorted({t for t, typing in ts if not typing and t != m}) for m, ts in graph().items()}
    found, state, stack = [], {}, []

    def visit(m: str) -> None:
        state[m] = "open"
        stack.append(m)
        for t in edges.get(m, []):
            if state.get(t) == "open":
                found.append(stack[stack.index(t) :] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    sys.setrecursionlimit(10_000)
    for m in edges:
        if m not in state:
            visit(m)
    return found


def test_no_import_cycle():
    assert cycles() == []


def test_every_unit_is_in_a_layer():
    units = {unit_of(module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert units <= set(LAYER_OF), f"give these a layer in LAYERS: {sorted(units - set(LAYER_OF))}"


def layer_name(module: str) -> str:
    return LAYERS[LAYER_OF[unit_of(module)]][0]


def test_imports_point_down_the_layers():
    upward = [
        f"{module} ({layer_name(module)}) imports {target} ({layer_name(target)})"
        for module, targets in graph().items()
        if module not in KNOWN_ROOT_IMPORTS
        for target, _ in targets
        if LAYER_OF[unit_of(target)] > LAYER_OF[unit_of(module)]
    ]
    assert upward == []


def test_the_report_only_reads_the_store():
    reads = {
        target
        for module, targets in graph().items()
        if unit_of(module) == "report"
        for target, _ in targets
        if unit_of(target) != "report" and LAYERS[LAYER_OF[unit_of(target)]][0] not in REPORT_READS
    }
    assert reads == set()


def test_nothing_inside_imports_the_package_root():
    inside = {
        module
        for module, targets in graph().items()
        if unit_of(module) not in LAYERS[-1][1]
        for target, _ in targets
        if target == "sgdlab"
    }
    assert inside == KNOWN_ROOT_IMPORTS


def test_the_checker_sees_lazy_relative_and_typing_imports(tmp_path):
    src = PACKAGE / "experiments" / "registry.py"
    found = dict(imports_of(src))
    assert found["sgdlab.errors"] is False and found["sgdlab.store.claims"] is True
    assert ("sgdlab.build", False) in imports_of(PACKAGE / "experiments" / "reproduce.py")  # in a function


def layer_diagram() -> str:
    """The unit graph, one line per unit, by layer: `unit → what it imports`."""
    units = unit_graph()
    lines = []
    for name, members in LAYERS:
        for unit in sorted(members):
            targets = ", ".join(sorted(units.get(unit, ()), key=lambda u: (LAYER_OF.get(u, -1), u)))
            lines.append(f"{name:12} {unit:13} → {targets}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(layer_diagram())
