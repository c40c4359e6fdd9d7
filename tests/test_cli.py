def test_version(cli):
    r = cli("version")
    assert r.returncode == 0 and r.stdout.strip()


def test_unknown_command_is_a_usage_error(cli):
    r = cli("frobnicate")
    assert r.returncode == 2 and "Traceback" not in r.stderr
