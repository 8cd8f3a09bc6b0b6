from click.testing import CliRunner

from matcher import __version__
from matcher.cli import batch_exit_code, cli


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"trialmatch, version {__version__}\n"


def test_help_carries_disclaimer():
    result = CliRunner().invoke(cli, ["--help"])
    assert "Supports coordinator review; not medical advice." in result.output


import pytest  # noqa: E402


@pytest.mark.parametrize(
    ("ok", "failed", "code"),
    [(3, 0, 0), (2, 1, 3), (0, 3, 4), (0, 0, 4)],
)
def test_batch_exit_code(ok, failed, code):
    assert batch_exit_code(ok, failed) == code
