"""Images: how `minirun run alpine` gets from a name to a root filesystem.

    reference  ->  registry pull  ->  content store  ->  layers unpacked once  ->  overlay lowerdirs
  reference.py    registry.py        store.py           layers.py                  overlay.py
                  auth.py, pull.py

  reference.py   what the user typed -> a canonical name (docker.io/library/alpine:latest)
  platform.py    this host's os/arch/variant, --platform, the index entry to take
  auth.py        `minirun login` credentials (Docker's config.json format)
  credhelper.py  Docker's credential helpers (docker-credential-<name> programs)
  registry.py    the distribution API client: manifests, blobs (streamed, verified), uploads
  pull.py        reference -> manifest -> verified blobs -> unpacked layers -> image record
  push.py        an image in the store -> the blobs the registry lacks -> its manifest under a tag
  store.py       blobs by digest, layers unpacked once, image records and tags; writes atomic
  layers.py      applies a layer tar safely (no escape; whiteouts become overlay whiteouts)
  overlay.py     a container's rootfs: overlayfs over the layer directories, idmapped if asked
  assemble.py    images made here (commit, build): a layer from an upper dir, config, manifest
  archive.py     save, load, import: docker-archive and OCI layout tars, offline
  dockerfile/    reading Dockerfiles: the parser, shell words, .dockerignore, --change

A container's rootfs is an overlay of the image's layer directories plus a fresh upper
directory: nothing is copied per container.
"""
