"""Fetch client-supplied URLs without letting them reach inside the network.

A URL chosen by a client is a server-side request forgery risk: on EC2,
``http://169.254.169.254/`` hands out the instance's credentials, and
loopback or private addresses reach services never meant to be public.
The package is split by job:

* ``policy``: what a fetch may do (``FetchPolicy``), cheap to import;
* ``addresses``: which addresses are public and which address a host
  string spells, pure functions;
* ``urls``: which URLs may be fetched, and their host in canonical form;
* ``resolver``: one DNS lookup per host, every answer checked;
* ``deadline``: one time limit over a whole request's fetching;
* ``transport``: one GET to a checked address, body read within a limit;
* ``client``: ``fetch`` and ``fetch_all``, redirects followed and checked;
* ``errors``: the errors all of these raise.

Importing the package itself loads nothing else, so that the service can
hold a policy at start and load urllib3 only for its first URL.
"""
