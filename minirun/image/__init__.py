"""Images: how `minirun run alpine` gets from a name to a root filesystem.

    reference  ->  registry pull  ->  content store  ->  layers unpacked once  ->  overlay lowerdirs
  reference.py    registry.py        store.py           layers.py                  (the engine)
                  auth.py

- reference.py turns what the user typed into a canonical name (docker.io/library/alpine:latest)
  and says which host to ask and which manifest (tag or digest) to ask for.
- registry.py speaks the distribution API (auth.py keeps `minirun login` credentials): it picks the
  manifest for this platform and streams the config and layer blobs.
- store.py keeps what was pulled under /var/lib/minirun: blobs verified by digest, each layer
  unpacked once into its own directory, image records and tags; every write atomic.
- layers.py applies a layer tar safely (no entry escapes its directory; whiteouts become overlay
  whiteouts), so a container's rootfs is an overlay of the image's layer directories plus a fresh
  upper directory: nothing is copied per container.
"""
