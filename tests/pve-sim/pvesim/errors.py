"""Errors shaped like Proxmox's: PVE::Exception (code, errors hash, usage)
and plain `die` messages. Perl's top level prints the message on stderr and
exits 255 for both; tools such as zfs use other exit codes (`exit=`)."""


class Die(Exception):
    """A plain Perl `die "...\\n"`; `exit` lets zfs/zpool use 1 or 2."""

    def __init__(self, msg, exit=255):
        if not msg.endswith("\n"):
            msg += "\n"
        super().__init__(msg)
        self.msg = msg
        self.exit = exit

    def text(self):
        return self.msg


class PVEError(Die):
    """PVE::Exception: '<code> <msg>', then 'key: error' lines, then usage."""

    def __init__(self, msg, code=None, errors=None, usage=None):
        super().__init__(msg)
        self.code = code
        self.errors = errors or {}
        self.usage = usage

    def is_param_exc(self):
        return self.code == 400

    def text(self):
        out = ("%s %s" % (self.code, self.msg)) if self.code else self.msg
        if not out.endswith("\n"):
            out += "\n"
        for k in sorted(self.errors):
            out += "%s: %s\n" % (k, self.errors[k])
        if self.usage:
            out += self.usage
            if not out.endswith("\n"):
                out += "\n"
        return out


def param_error(errors):
    """raise_param_exc: 400 Parameter verification failed."""
    return PVEError("Parameter verification failed.\n", code=400, errors=errors)


class FormatError(Exception):
    """parse_property_string's `raise "format error\\n", errors => {...}`;
    str() gives the stringified exception as it is embedded in messages."""

    def __init__(self, errors):
        super().__init__("format error")
        self.errors = errors

    def __str__(self):
        out = "format error\n"
        for k in sorted(self.errors):
            out += "%s: %s\n" % (k, self.errors[k])
        return out


class Invalid(Exception):
    """A format validator's `die "...\\n"`; str() keeps the newline."""

    def __init__(self, msg):
        if not msg.endswith("\n"):
            msg += "\n"
        super().__init__(msg)

    def __str__(self):
        return self.args[0]
