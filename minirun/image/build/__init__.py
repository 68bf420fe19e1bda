"""`minirun build`: Dockerfiles into images.

  dockerfile.py    the parser: directives, continuations, exec/shell forms, variable expansion
  dockerignore.py  .dockerignore, with Docker's pattern rules
  builder.py       the stages and steps: RUN in a container, COPY/ADD from the context, the
                   layer cache, one layer per filesystem step (engine/commit.py makes them)
"""
