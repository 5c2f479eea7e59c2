"""The CLI stays light: --help and plugins must not import torch or transformers."""

from __future__ import annotations

import subprocess
import sys


def test_help_and_plugins_do_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from auditft.cli import cli\n"
        "for args in (['--help'], ['plugins'], ['plugins', '--format', 'table']):\n"
        "    r = CliRunner().invoke(cli, args)\n"
        "    assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'datasets', 'sklearn') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_version():
    from click.testing import CliRunner

    from auditft import __version__
    from auditft.cli import cli

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
