"""The Spark engine (``pip install 'flowwarden[spark]'``): see ``session`` for use on a cluster."""
