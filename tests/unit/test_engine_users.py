"""engine.users: USER / -u resolved in the image's own /etc/passwd and /etc/group."""

from __future__ import annotations

import pytest

from minirun.engine import users
from minirun.engine.users import ResolvedUser, UserError, resolve

PASSWD = """root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:App:/home/app:/bin/sh
nohome:x:1001:1001::
"""
GROUP = """root:x:0:
daemon:x:1:
app:x:1000:
wheel:x:10:app,other
audio:x:29:other,app
staff:x:50:
"""


@pytest.fixture
def rootfs(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(PASSWD)
    (etc / "group").write_text(GROUP)
    return str(tmp_path)


def test_empty_user_is_root(rootfs):
    assert resolve(rootfs, "") == ResolvedUser(0, 0, [], "/root")


def test_name_gets_uid_gid_home_and_supplementary_groups(rootfs):
    assert resolve(rootfs, "app") == ResolvedUser(1000, 1000, [10, 29], "/home/app")


def test_numeric_uid_in_passwd_is_that_user(rootfs):
    assert resolve(rootfs, "1000") == ResolvedUser(1000, 1000, [10, 29], "/home/app")


def test_numeric_uid_not_in_passwd_gets_gid_0_and_home_root_dir(rootfs):
    assert resolve(rootfs, "4242") == ResolvedUser(4242, 0, [], "/")


def test_user_without_home_gets_slash(rootfs):
    assert resolve(rootfs, "nohome").home == "/"


def test_name_colon_group_uses_that_group_and_no_supplementary_ones(rootfs):
    assert resolve(rootfs, "app:staff") == ResolvedUser(1000, 50, [], "/home/app")


def test_uid_colon_gid_needs_no_entries(rootfs):
    assert resolve(rootfs, "4242:4343") == ResolvedUser(4242, 4343, [], "/")


def test_unknown_user_name_is_dockers_error(rootfs):
    with pytest.raises(UserError) as e:
        resolve(rootfs, "nobody")
    assert str(e.value) == "unable to find user nobody: no matching entries in passwd file"
    assert e.value.exit_code == 125


def test_unknown_group_name_is_an_error(rootfs):
    with pytest.raises(UserError, match="unable to find group nogroup: no matching entries"):
        resolve(rootfs, "app:nogroup")


def test_missing_passwd_file_still_allows_numeric_ids(tmp_path):
    assert resolve(str(tmp_path), "1000:1000") == ResolvedUser(1000, 1000, [], "/")
    with pytest.raises(UserError):
        resolve(str(tmp_path), "app")


def test_etc_as_absolute_symlink_is_read_inside_the_rootfs(tmp_path):
    real = tmp_path / "realetc"
    real.mkdir()
    (real / "passwd").write_text("imageuser:x:777:778::/home/iu:/bin/sh\n")
    (real / "group").write_text("extra:x:900:imageuser\n")
    (tmp_path / "etc").symlink_to("/realetc")
    assert resolve(str(tmp_path), "imageuser") == ResolvedUser(777, 778, [900], "/home/iu")
    with pytest.raises(UserError):
        resolve(str(tmp_path), "root")  # the host's /etc/passwd was not read


@pytest.fixture
def linked_rootfs(tmp_path):
    """An image whose /etc is an absolute symlink (to /realetc), with a supplementary group."""
    etc = tmp_path / "realetc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nmini:x:1000:1000::/home/mini:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\nmini:x:1000:\nextra:x:2000:mini,other\nwheel:x:10:\n")
    (tmp_path / "etc").symlink_to("/realetc")  # absolute: must resolve inside the rootfs
    return str(tmp_path)


@pytest.mark.parametrize("spec,uid,gid,extra", [
    ("", 0, 0, []), ("root", 0, 0, []), ("mini", 1000, 1000, [2000]), ("1000", 1000, 1000, [2000]),
    ("mini:wheel", 1000, 10, []), ("1000:5", 1000, 5, []), ("4242", 4242, 0, []),
])
def test_users_come_from_the_image(linked_rootfs, spec, uid, gid, extra):
    u = users.resolve(linked_rootfs, spec)
    assert (u.uid, u.gid, u.additional_gids) == (uid, gid, extra)


def test_unknown_user_and_group_have_dockers_messages(linked_rootfs):
    with pytest.raises(users.UserError, match="unable to find user nobody: no matching entries in passwd file"):
        users.resolve(linked_rootfs, "nobody")
    with pytest.raises(users.UserError, match="unable to find group nogroup"):
        users.resolve(linked_rootfs, "mini:nogroup")


def test_home_comes_from_passwd(linked_rootfs):
    assert users.resolve(linked_rootfs, "mini").home == "/home/mini"
