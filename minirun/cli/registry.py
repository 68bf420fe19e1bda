"""The command table: every command's name, the module that defines it and its one-line help.

Why a table: importing every command module at start cost each command ~25 ms (minirun ps -a
47 ms, --help 76 ms with compose). With the table, a group lists its commands (`--help`, shell
completion of a command name) without importing anything, and imports a command's module only
when that command runs (Group.get_command in cli/__init__.py: click's lazy group pattern).

The help texts are copies of each command's short help (click's: its docstring's first
sentence, or short_help): tests/unit/test_cli_registry.py checks that they match the commands
themselves, and that every command is in the table, so the two cannot drift apart.

A module name is relative to minirun.cli ("." is cli/__init__.py itself: the `image` and
`container` groups live there, since several modules add commands to them). A module registers
its commands on import, as it always did (@main.command(), image.add_command(...)).
"""

from __future__ import annotations

HIDDEN = True  # left out of --help (an alias Docker does not show either)

# group (the table= given to its Group; "main" is minirun itself) -> name -> (module, short help
# [, HIDDEN]). Aliases are entries of their own: the same module, the same help.
COMMANDS: dict[str, dict[str, tuple]] = {
    "main": {
        "attach": ("containers", "Attach this terminal to a running container's stdio (ctrl-p "
                                 'ctrl-q detaches).'),
        "build": ("build", 'Build an image from a Dockerfile in CONTEXT (a directory).'),
        "builder": ("build", 'Manage the build cache.'),
        "compose": ("..compose.cli", 'Define and run multi-container applications (Docker '
                                     'Compose v2).'),
        "commit": ("build", "Create a new image from a container's changes."),
        "completion": ("completion", 'Print the shell completion script for bash, zsh or fish.'),
        "container": (".", 'Manage containers (the docker container ... management commands).'),
        "cp": ("containers", 'Copy files between a container and the host: cp CTR:SRC DEST, cp '
                             'SRC CTR:DEST (- for a tar stream on stdin/stdout).'),
        "create": ("create", 'Create a container from IMAGE without starting it; print its '
                                 'ID.'),
        "diff": ("containers", "Files changed in a container's filesystem: A added, C changed, D "
                               'deleted.'),
        "events": ("system", 'Print what happens to containers, images, networks and volumes '
                             '(the event journal).'),
        "exec": ("exec", 'Run a command in a running container (every namespace and the cgroup '
                         'joined).'),
        "export": ("containers", "Export a container's filesystem as a tar archive (running or "
                                 'not).'),
        "history": ("images", 'Show the history of an image.'),
        "image": (".", 'Manage images (the docker image ... management commands).'),
        "images": ("images", 'List images.'),
        "import": ("archive", 'Make a one-layer image from a flat rootfs tar (FILE, or - for '
                              'stdin).'),
        "info": ("system", 'Describe this host as minirun sees it: kernel, cgroups, where things '
                           'live.'),
        "inspect": ("listing", 'Low-level information on containers, images or volumes, as JSON '
                               '(or --format).'),
        "kill": ("containers", 'Kill running containers (SIGKILL, or -s SIGNAL).'),
        "load": ("archive", 'Load images from a docker-archive or an OCI image layout.'),
        "login": ("pull", 'Log in to a registry (default docker.io); the credentials are '
                          'checked, then saved.'),
        "logout": ("pull", 'Forget the credentials of a registry (default docker.io).'),
        "logs": ("listing", "Fetch a container's logs (stdout to stdout, stderr to stderr)."),
        "manifest": ("manifest", 'Inspect image manifests in a registry (docker manifest '
                                 'inspect).'),
        "network": ("network", 'Manage networks (bridge networks; host and none are always '
                               'there).'),
        "pause": ("containers", 'Freeze every process of the containers (the cgroup freezer).'),
        "port": ("listing", "List a container's published ports (or the host side of one: port "
                            'CTR 80/tcp).'),
        "ps": ("listing", 'List containers.'),
        "pull": ("pull", 'Pull an image from a registry: NAME[:TAG|@DIGEST].'),
        "push": ("push", 'Upload an image to a registry: NAME[:TAG].'),
        "rename": ("containers", 'Rename a container.'),
        "restart": ("containers", 'Restart containers: stop (if running), then start again.'),
        "rm": ("containers", 'Remove containers (their writable layer too; named volumes stay).'),
        "rmi": ("images", 'Remove one or more images (untag; delete when no tag is left).'),
        "run": ("run", 'Create and start a container from IMAGE, running COMMAND (or the '
                              "image's default)."),
        "save": ("archive", 'Save images (names or IDs) to a tar archive.'),
        "start": ("containers", 'Start one or more created or stopped containers (their '
                                'filesystem is kept).'),
        "stats": ("stats", 'Live resource usage: CPU %, memory, network and block I/O, PIDs '
                           '(from the cgroup).'),
        "stop": ("containers", 'Stop running containers: the stop signal, then SIGKILL after the '
                               'timeout.'),
        "system": ("system", 'Manage minirun (df, prune, info).'),
        "tag": ("images", 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE (no data is '
                          'copied).'),
        "top": ("listing", 'The running processes of a container (as host PIDs).'),
        "unpause": ("containers", 'Thaw paused containers.'),
        "update": ("update", 'Update configuration of one or more containers.'),
        "version": ("system", 'Show the versions of minirun and the runtime-spec it implements.'),
        "volume": ("volumes", 'Manage volumes.'),
        "wait": ("containers", 'Block until the containers stop; print each exit code.'),
    },
    "image": {
        "history": ("images", 'Show the history of an image.'),
        "import": ("archive", 'Make a one-layer image from a flat rootfs tar (FILE, or - for '
                              'stdin).'),
        "inspect": ("images", 'Display detailed information on one or more images.'),
        "list": ("images", 'List images.', HIDDEN),
        "load": ("archive", 'Load images from a docker-archive or an OCI image layout.'),
        "ls": ("images", 'List images.'),
        "prune": ("images", 'Remove unused images (dangling ones; with -a every image no '
                            'container uses).'),
        "pull": ("pull", 'Pull an image from a registry (same as `minirun pull`).'),
        "push": ("push", 'Upload an image to a registry (same as `minirun push`).'),
        "remove": ("images", 'Remove one or more images (untag; delete when no tag is left).',
                   HIDDEN),
        "rm": ("images", 'Remove one or more images (untag; delete when no tag is left).'),
        "save": ("archive", 'Save images (names or IDs) to a tar archive.'),
        "tag": ("images", 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE (no data is '
                          'copied).'),
    },
    "builder": {
        "prune": ("build", 'Forget the build cache; its layers go when no image uses them.'),
    },
    "container": {
        "attach": ("containers", "Attach this terminal to a running container's stdio (ctrl-p "
                                 'ctrl-q detaches).'),
        "cp": ("containers", 'Copy files between a container and the host: cp CTR:SRC DEST, cp '
                             'SRC CTR:DEST (- for a tar stream on stdin/stdout).'),
        "create": ("create", 'Create a container from IMAGE without starting it; print its '
                                 'ID.'),
        "diff": ("containers", "Files changed in a container's filesystem: A added, C changed, D "
                               'deleted.'),
        "exec": ("exec", 'Run a command in a running container (every namespace and the cgroup '
                         'joined).'),
        "export": ("containers", "Export a container's filesystem as a tar archive (running or "
                                 'not).'),
        "inspect": ("listing", 'Low-level information on containers.'),
        "kill": ("containers", 'Kill running containers (SIGKILL, or -s SIGNAL).'),
        "list": ("listing", 'List containers.'),
        "logs": ("listing", "Fetch a container's logs (stdout to stdout, stderr to stderr)."),
        "ls": ("listing", 'List containers.'),
        "pause": ("containers", 'Freeze every process of the containers (the cgroup freezer).'),
        "port": ("listing", "List a container's published ports (or the host side of one: port "
                            'CTR 80/tcp).'),
        "prune": ("containers", 'Remove all stopped containers.'),
        "ps": ("listing", 'List containers.'),
        "remove": ("containers", 'Remove containers (their writable layer too; named volumes '
                                 'stay).'),
        "rename": ("containers", 'Rename a container.'),
        "restart": ("containers", 'Restart containers: stop (if running), then start again.'),
        "rm": ("containers", 'Remove containers (their writable layer too; named volumes stay).'),
        "run": ("run", 'Create and start a container from IMAGE, running COMMAND (or the '
                              "image's default)."),
        "start": ("containers", 'Start one or more created or stopped containers (their '
                                'filesystem is kept).'),
        "stats": ("stats", 'Live resource usage: CPU %, memory, network and block I/O, PIDs '
                           '(from the cgroup).'),
        "stop": ("containers", 'Stop running containers: the stop signal, then SIGKILL after the '
                               'timeout.'),
        "top": ("listing", 'The running processes of a container (as host PIDs).'),
        "unpause": ("containers", 'Thaw paused containers.'),
        "update": ("update", 'Update configuration of one or more containers.'),
        "wait": ("containers", 'Block until the containers stop; print each exit code.'),
    },
    "network": {
        "connect": ("network", 'Connect a container to a network (at once if it runs: one more '
                               'interface, ethN).'),
        "create": ("network", 'Create a network (a bridge, or macvlan/ipvlan on a host '
                              'interface); print its ID.'),
        "disconnect": ("network", 'Disconnect a container from a network.'),
        "inspect": ("network", 'Display detailed information on networks (subnet, gateway, '
                               'containers and addresses).'),
        "list": ("network", 'List networks.'),
        "ls": ("network", 'List networks.'),
        "prune": ("network", "Remove unused networks (and the default network's bridge device, "
                             'while unused).'),
        "remove": ("network", 'Remove networks (not while a container is on them).'),
        "rm": ("network", 'Remove networks (not while a container is on them).'),
    },
    "volume": {
        "create": ("volumes", 'Create a volume (a random name if none is given); print its name.'),
        "inspect": ("volumes", 'Display detailed information on volumes.'),
        "list": ("volumes", 'List volumes.'),
        "ls": ("volumes", 'List volumes.'),
        "prune": ("volumes", 'Remove unused volumes (anonymous ones; -a: named ones too), as '
                             'Docker 23+ does.'),
        "remove": ("volumes", 'Remove volumes (not while a container uses them).'),
        "rm": ("volumes", 'Remove volumes (not while a container uses them).'),
    },
    "system": {
        "boot": ("system", 'After a reboot: mark the containers it stopped exited (255) and '
                           'start those whose restart policy says so, as dockerd does when it '
                           'starts; once per boot. scripts/systemd/minirun-boot.service runs it; '
                           "the rules are engine/api/boot.py's."),
        "df": ("system", 'Disk usage of images, containers, volumes and the build cache.'),
        "info": ("system", 'Describe this host as minirun sees it: kernel, cgroups, where things '
                           'live.'),
        "prune": ("system", 'Remove stopped containers, unused networks, unused images '
                            '(dangling; -a all unused) and, with --volumes, unused anonymous '
                            'volumes.'),
        "service": ("system", 'Serve the Docker Engine API, so docker, docker-py and '
                              'testcontainers drive minirun.'),
    },
    "manifest": {
        "inspect": ("manifest", "Show an image's manifest or manifest list, read from its "
                                'registry (nothing pulled).'),
    },
}
