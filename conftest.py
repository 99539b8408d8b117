"""Collection for the whole repository (tests, the package's doctests, docs): the integrations
with optional libraries are collected only where those libraries are installed (`make test`
installs them; without them `import sgdlab` still works and their tests skip)."""

from importlib.util import find_spec

collect_ignore = [
    f"src/sgdlab/integrations/{module}.py"
    for module, library in (("lightning", "lightning"), ("transformers", "transformers"))
    if find_spec(library) is None
]
