"""ACL commands: SETUSER GETUSER DELUSER LIST USERS WHOAMI CAT GENPASS LOG
SAVE LOAD DRYRUN HELP. The users and the checks live in common/acl.py."""

from __future__ import annotations

import os

from hakv.common import errors
from hakv.common.acl import CATEGORIES, RuleError, merge_selector_args
from hakv.common.commands.table import command, container
from hakv.common.numbers import get_int
from hakv.common.resp import ErrorReply

G = "server"
ADMIN = "admin noscript loading stale"

NO_ACLFILE = (
    "ERR This Redis instance is not configured to use an ACL file. You may want to specify "
    "users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a "
    "Redis configuration file set) in order to store users in the Redis configuration.")


class OrderedSet(set):
    """A RESP3 set reply whose members keep their order (ACL GETUSER flags)."""

    def __init__(self, items):
        items = list(items)
        super().__init__(items)
        self.order = items

    def __iter__(self):
        return iter(self.order)


def _acl(ctx):
    acl = ctx.server.acl
    if acl is None:
        raise ErrorReply("ERR ACLs are not available on this node")
    return acl


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


container("acl", -2, "", group=G, summary="Access control: users and permissions",
          since="6.0.0")


@command("acl|setuser", -3, ADMIN, group=G, since="6.0.0")
def acl_setuser(ctx, argv):
    acl = _acl(ctx)
    name = argv[2]
    if any(c in b" \t\n\r\x0b\x0c\x00" for c in name):
        raise ErrorReply("ERR Usernames can't contain spaces or null characters")
    rules, start = merge_selector_args(argv[3:])
    if rules is None:
        raise ErrorReply("ERR Unmatched parenthesis in acl selector starting at '%s'."
                         % _text(start))
    try:
        acl.set_user(_text(name), rules)
    except RuleError as exc:
        op, reason = exc.args
        raise ErrorReply("ERR Error in ACL SETUSER modifier '%s': %s" % (_text(op), reason))
    return "OK"


@command("acl|getuser", 3, ADMIN, group=G, since="6.0.0")
def acl_getuser(ctx, argv):
    acl = _acl(ctx)
    user = acl.get_user(_text(argv[2]))
    if user is None:
        return None
    out = {
        b"flags": OrderedSet(f.encode() for f in user.flags()),
        b"passwords": [p.encode() for p in user.passwords],
    }
    out.update(_selector_fields(acl, user.root))
    out[b"selectors"] = [_selector_fields(acl, s) for s in user.selectors[1:]]
    return out


def _selector_fields(acl, selector) -> dict:
    if selector.all_keys:
        keys = "~*"
    else:
        from hakv.common.acl import _key_pattern_text
        keys = " ".join(_key_pattern_text(p, perm) for p, perm in selector.keys)
    if selector.all_channels:
        channels = "&*"
    else:
        channels = " ".join("&" + _text(p) for p in selector.channels)
    return {
        b"commands": acl.describe_commands(selector).encode("utf-8", "surrogateescape"),
        b"keys": keys.encode("utf-8", "surrogateescape"),
        b"channels": channels.encode("utf-8", "surrogateescape"),
    }


@command("acl|deluser", -3, ADMIN, group=G, since="6.0.0")
def acl_deluser(ctx, argv):
    acl = _acl(ctx)
    names = [_text(a) for a in argv[2:]]
    if "default" in names:
        raise ErrorReply("ERR The 'default' user cannot be removed")
    return sum(1 for name in names if acl.delete_user(name))


@command("acl|list", 2, ADMIN, group=G, since="6.0.0")
def acl_list(ctx, argv):
    return [line.encode("utf-8", "surrogateescape") for line in _acl(ctx).list_lines()]


@command("acl|users", 2, ADMIN, group=G, since="6.0.0")
def acl_users(ctx, argv):
    acl = _acl(ctx)
    return [n.encode("utf-8", "surrogateescape")
            for n in sorted(acl.users, key=lambda n: n.encode("utf-8", "surrogateescape"))]


@command("acl|whoami", 2, "noscript loading stale", group=G, since="6.0.0")
def acl_whoami(ctx, argv):
    return ctx.user.encode("utf-8", "surrogateescape")


@command("acl|cat", -2, "noscript loading stale", group=G, since="6.0.0")
def acl_cat(ctx, argv):
    if len(argv) > 3:
        raise ErrorReply(errors.unknown_subcommand(argv).message)
    if len(argv) == 2:
        return [c.encode() for c in CATEGORIES]
    category = _text(argv[2]).lower()
    if category not in CATEGORIES:
        raise ErrorReply("ERR Unknown category '%s'" % _text(argv[2])[:128])
    return [c.fullname.encode() for c in _acl(ctx).implemented_members(category)]


@command("acl|genpass", -2, "noscript loading stale", group=G, since="6.0.0")
def acl_genpass(ctx, argv):
    if len(argv) > 3:
        raise ErrorReply(errors.unknown_subcommand(argv).message)
    bits = 256
    if len(argv) == 3:
        bits = get_int(argv[2])
    if bits <= 0 or bits > 4096:
        raise ErrorReply("ERR ACL GENPASS argument must be the number of bits for the output "
                         "password, a positive number up to 4096")
    chars = (bits + 3) // 4
    return os.urandom((chars + 1) // 2).hex()[:chars].encode()


@command("acl|log", -2, ADMIN, group=G, since="6.0.0")
def acl_log(ctx, argv):
    if len(argv) > 3:
        raise ErrorReply(errors.unknown_subcommand(argv).message)
    acl = _acl(ctx)
    count = 10
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            acl.log.clear()
            return "OK"
        count = max(0, get_int(argv[2]))
    return acl.log_entries(count)


def _aclfile(ctx) -> str:
    path = ctx.server.settings["aclfile"]
    if not path:
        raise ErrorReply(NO_ACLFILE)
    return path


@command("acl|save", 2, ADMIN, group=G, since="6.0.0")
def acl_save(ctx, argv):
    path = _aclfile(ctx)
    if not _acl(ctx).save_file(path):
        raise ErrorReply("ERR There was an error trying to save the ACLs. Please check the "
                         "server logs for more information")
    return "OK"


@command("acl|load", 2, ADMIN, group=G, since="6.0.0")
def acl_load(ctx, argv):
    path = _aclfile(ctx)
    problems = _acl(ctx).load_file(path)
    if problems:
        raise ErrorReply("ERR " + problems)
    return "OK"


@command("acl|dryrun", -4, ADMIN, group=G, since="7.0.0")
def acl_dryrun(ctx, argv):
    from hakv.common import acl as acl_module
    from hakv.common.dispatch import lookup
    acl = _acl(ctx)
    user = acl.get_user(_text(argv[2]))
    if user is None:
        raise ErrorReply("ERR User '%s' not found" % _text(argv[2]))
    sub = argv[3:]
    cmd = lookup(ctx.server, sub)
    if isinstance(cmd, ErrorReply) and sub[0].lower() == b"debug":
        cmd = acl.by_name["debug"]  # one command in Redis, whatever its argument
    if isinstance(cmd, ErrorReply):
        if getattr(cmd, "command", None) is None:
            raise ErrorReply("ERR Command '%s' not found" % _text(argv[3]))
        raise cmd
    reason, idx = acl.permission(user, cmd, sub)
    if not reason:
        return "OK"
    if reason == acl_module.DENIED_CMD:
        return ("This user has no permissions to run the '%s' command" % cmd.fullname).encode()
    what = "key" if reason == acl_module.DENIED_KEY else "channel"
    return b"This user has no permissions to access the '%s' %s" % (sub[idx], what.encode())


@command("acl|help", 2, "loading stale", group=G, since="6.0.0")
def acl_help(ctx, argv):
    return [
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the "
        "command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Print this help.",
    ]
