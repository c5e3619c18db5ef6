"""Render the shipped nginx front configuration for local replicas.

``deploy/nginx/nginx.conf`` is a template whose ``${FRONT_*}`` names are
filled in as the official nginx image fills them in (envsubst limited to
those names; nginx's own ``$variables`` stay). ``deploy/nginx/upstream.conf``
lists the replicas of compose.yaml; here it is rewritten to list local
replicas instead, each with the parameters the shipped file gives them.
"""

import pathlib
import re

NGINX_DIR = pathlib.Path(__file__).resolve().parent / "nginx"
TEMPLATE = NGINX_DIR / "nginx.conf"
UPSTREAMS = NGINX_DIR / "upstream.conf"
_PLACEHOLDER = re.compile(r"\$\{(FRONT_[A-Z0-9_]+)\}")
_SERVER = re.compile(r"^\s*server\s+(\S+)(.*);\s*$", re.MULTILINE)


class ConfigError(ValueError):
    """The template or the upstream list is not as this module expects."""


def render_template(text, values):
    """Return ``text`` with each ``${FRONT_NAME}`` replaced by its value."""
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise ConfigError(f"no value for {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), text)


def server_parameters(text=None):
    """Return the parameters every server line of upstream.conf shares."""
    text = UPSTREAMS.read_text() if text is None else text
    found = {parameters.strip() for _, parameters in _SERVER.findall(text)}
    if len(found) != 1:
        raise ConfigError("upstream.conf must list servers that all have "
                          f"the same parameters, found {sorted(found)}")
    return found.pop()


def upstream_lines(addresses):
    """Return upstream.conf's lines for ``addresses`` (``host:port``)."""
    parameters = server_parameters()
    return "".join(f"server {address} {parameters};\n"
                   for address in addresses)


def write_config(folder, listen, addresses):
    """Write nginx.conf and upstream.conf into ``folder``; return the conf.

    ``listen`` is what nginx's listen directive gets (``127.0.0.1:8080``);
    ``addresses`` are the replicas as ``host:port``.
    """
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(render_template(TEMPLATE.read_text(),
                                    {"FRONT_LISTEN": listen}))
    (folder / "upstream.conf").write_text(upstream_lines(addresses))
    return conf
