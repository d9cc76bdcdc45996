import ast
from pathlib import Path

import optuna_nachos.data

# the data layer may import only the layers above it (config, models, cost), never Optuna
FORBIDDEN = ("optuna", "optuna_dashboard")
LOWER_LAYERS = ("train", "space", "objective", "samplers", "study", "results", "cli")


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_data_layer_imports_neither_optuna_nor_lower_layers():
    folder = Path(optuna_nachos.data.__file__).parent
    sources = sorted(folder.glob("*.py"))
    assert len(sources) > 5
    for source in sources:
        for module in _imported_modules(source):
            top = module.split(".")[0]
            assert top not in FORBIDDEN, f"{source.name} imports {module}"
            if top == "optuna_nachos":
                parts = module.split(".")
                assert len(parts) > 1 and parts[1] not in LOWER_LAYERS, (
                    f"{source.name} imports {module}"
                )


def test_public_names():
    for name in optuna_nachos.data.__all__:
        assert hasattr(optuna_nachos.data, name)
