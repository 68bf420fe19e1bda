"""`minirun build`'s reading half: the Dockerfile and the context's ignore rules.

  dockerfile.py    the parser: directives, continuations, exec/shell forms, flags, the argument
                   shapes of ENV/LABEL/ARG/COPY/HEALTHCHECK
  shellwords.py    Docker's shell-word lexer: quotes, escapes, $VAR and ${VAR...} expansion
  changes.py       `commit -c`/`import -c`: Dockerfile instructions applied to an image config
  dockerignore.py  .dockerignore, with Docker's pattern rules

The builder that runs the steps is engine/builder.py (it makes containers; this package only
reads), and the layers it makes come from image/assemble.py.
"""
