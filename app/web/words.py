"""Word-count routes: parse the request, call the store, render JSON."""

import collections
from urllib.parse import quote

import bottle

from app.errors import InvalidInput, UnsupportedMediaType
from app.web.access import scope
from app.web.bodies import (
    is_json_type, media_type, parse_ascii_integer, parse_json_object,
    parse_text, take_fields)
from app.words.validation import (
    normalize_prefix, normalize_word, parse_count, parse_increment,
    split_words)

MAX_OFFSET = 2 ** 31 - 1


class WordRoutes:
    """Handlers of /words and /texts over one store and one settings."""

    def __init__(self, store, settings):
        """Keep the store and the settings the handlers need."""
        self.store = store
        self.settings = settings

    def install(self, app):
        """Add the word routes to a Bottle app."""
        read, write = scope("words:read"), scope("words:write")
        app.route("/words", "POST", self.create, **write)
        app.route("/words", "GET", self.list, **read)
        app.route("/words/<word>", "GET", self.read, **read)
        app.route("/words/<word>", "PUT", self.replace, **write)
        app.route("/words/<word>", "PATCH", self.increment, **write)
        app.route("/words/<word>", "DELETE", self.delete, **write)
        app.route("/texts", "POST", self.count_text, **write)

    def create(self):
        """Create a word with a given or default count."""
        body = take_fields(_json_body(), ("word",), ("count",))
        word = normalize_word(body["word"])
        count = parse_count(body.get("count", self.settings.default_count))
        self.store.create(word, count)
        bottle.response.status = 201
        bottle.response.set_header("Location", "/words/" + quote(word))
        return _word(word, count)

    def read(self, word):
        """Return one word's count."""
        word = normalize_word(word)
        return _word(word, self.store.get(word))

    def replace(self, word):
        """Set a word's count, creating the word if needed."""
        word = normalize_word(word)
        count = parse_count(take_fields(_json_body(), ("count",))["count"])
        if self.store.put(word, count):
            bottle.response.status = 201
            bottle.response.set_header("Location", "/words/" + quote(word))
        return _word(word, count)

    def increment(self, word):
        """Add a (possibly negative) increment to a word's count."""
        word = normalize_word(word)
        delta = parse_increment(
            take_fields(_json_body(), ("increment",))["increment"])
        return _word(word, self.store.increment(word, delta))

    def delete(self, word):
        """Remove a word."""
        self.store.delete(normalize_word(word))
        bottle.response.status = 204
        return ""

    def list(self):
        """Return one page of words, sorted, optionally by prefix."""
        query = bottle.request.query
        prefix = normalize_prefix(query.getunicode("prefix", default=""))
        limit = _query_int(query, "limit", self.settings.list_limit_default,
                           1, self.settings.list_limit_max)
        offset = _query_int(query, "offset", 0, 0, MAX_OFFSET)
        rows, total = self.store.list(prefix, limit, offset)
        return {"words": [_word(word, count) for word, count in rows],
                "total": total, "limit": limit, "offset": offset}

    def count_text(self):
        """Count every word of a text into the store in one transaction."""
        content_type = bottle.request.content_type
        data = bottle.request.body.read()
        if is_json_type(content_type):
            text = take_fields(parse_json_object(content_type, data),
                               ("text",))["text"]
            if not isinstance(text, str):
                raise InvalidInput("text must be a string",
                                   code="invalid_text")
        elif media_type(content_type) == "text/plain":
            text = parse_text(content_type, data)
        else:
            raise UnsupportedMediaType(
                "send the text as text/plain or as JSON {\"text\": ...}")
        words = split_words(text)
        counted = dict(collections.Counter(words))
        if counted:
            self.store.add_counts(counted)
        return {"counted": counted, "words": len(words)}


def _json_body():
    """Return the request's JSON object body."""
    return parse_json_object(bottle.request.content_type,
                             bottle.request.body.read())


def _word(word, count):
    """Render one word."""
    return {"word": word, "count": count}


def _query_int(query, name, default, low, high):
    """Return an integer query parameter within low..high."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    value = parse_ascii_integer(raw)
    if value is None or not low <= value <= high:
        raise InvalidInput(f"{name} must be an integer from {low} to {high}",
                           code="invalid_query")
    return value
