"""Where pickle finds ``Loop``'s methods that carry a stock qualified name.

``_loop._adopt_stock_qualnames`` gives each public method of ``Loop`` that
asyncio also defines the ``__qualname__`` of the stock method
(``BaseEventLoop.set_debug``, ``BaseSelectorEventLoop.sock_recv``, ...), so
that a wrong call raises the stock message (CPython words it from the
function's ``__qualname__``). pickle finds a function by ``__module__`` and
``__qualname__``: those methods name this module, which holds one namespace
per stock class name, holding the methods. Nothing else uses it; these
namespaces are not asyncio's classes.
"""


class _Owner:
    """A namespace standing for the stock class `name` (for pickle only)."""

    def __init__(self, name):
        self.__name__ = self.__qualname__ = name

    def __repr__(self):
        return f"<ferroloop methods named after asyncio's {self.__name__}>"


def register(function):
    """Makes `function` (whose qualname is `Owner.name`) findable here."""
    owner_name, _, name = function.__qualname__.partition(".")
    owner = globals().setdefault(owner_name, _Owner(owner_name))
    setattr(owner, name, function)
    function.__module__ = __name__
