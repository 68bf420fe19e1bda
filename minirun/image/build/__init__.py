"""`minirun build`'s reading half: the Dockerfile and the context's ignore rules.

  dockerfile.py    the parser: directives, continuations, exec/shell forms, flags, Docker's
                   variable expansion, the argument shapes of ENV/LABEL/ARG/COPY/HEALTHCHECK
  dockerignore.py  .dockerignore, with Docker's pattern rules
The builder that runs the steps is engine/builder.py (it makes containers; this package only
reads), and the layers it makes come from image/assemble.py.
"""
