# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_hcikit_global_optspecs
    string join \n v/verbose h/help V/version
end

function __fish_hcikit_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_hcikit_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_hcikit_using_subcommand
    set -l cmd (__fish_hcikit_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c hcikit -n "__fish_hcikit_needs_command" -s v -l verbose -d 'More log output (-v: debug, -vv: trace). Logs go to stderr'
complete -c hcikit -n "__fish_hcikit_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hcikit -n "__fish_hcikit_needs_command" -s V -l version -d 'Print version'
complete -c hcikit -n "__fish_hcikit_needs_command" -f -a "validate" -d 'Check a cluster spec and report every problem at once'
complete -c hcikit -n "__fish_hcikit_needs_command" -f -a "plan" -d 'Show the resolved plan: nodes, networks, links, disks, first-boot steps'
complete -c hcikit -n "__fish_hcikit_needs_command" -f -a "render" -d 'Render every node\'s configuration files into a folder (secrets redacted)'
complete -c hcikit -n "__fish_hcikit_needs_command" -f -a "build" -d 'Build bootable disk images for every node'
complete -c hcikit -n "__fish_hcikit_needs_command" -f -a "inspect" -d 'Show what an image holds: partitions, ESP files, node identity, checksums'
complete -c hcikit -n "__fish_hcikit_needs_command" -f -a "flash" -d 'Write an image to a block device using its bmap, then verify it'
complete -c hcikit -n "__fish_hcikit_needs_command" -f -a "simulate" -d 'Run the whole first boot of every node against the simulated cluster'
complete -c hcikit -n "__fish_hcikit_needs_command" -f -a "serve" -d 'Serve a --pxe tree over HTTP and show the fleet\'s install and first-boot progress'
complete -c hcikit -n "__fish_hcikit_needs_command" -f -a "completions" -d 'Print shell completions'
complete -c hcikit -n "__fish_hcikit_needs_command" -f -a "man" -d 'Print the man page (roff)'
complete -c hcikit -n "__fish_hcikit_needs_command" -f -a "schema" -d 'Print the JSON Schema of cluster.toml'
complete -c hcikit -n "__fish_hcikit_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hcikit -n "__fish_hcikit_using_subcommand validate" -l json -d 'Print a JSON report ({ok, nodes, networks, errors, warnings}) for scripts'
complete -c hcikit -n "__fish_hcikit_using_subcommand validate" -s v -l verbose -d 'More log output (-v: debug, -vv: trace). Logs go to stderr'
complete -c hcikit -n "__fish_hcikit_using_subcommand validate" -s h -l help -d 'Print help'
complete -c hcikit -n "__fish_hcikit_using_subcommand validate" -s V -l version -d 'Print version'
complete -c hcikit -n "__fish_hcikit_using_subcommand plan" -l json -d 'Print the Plan as JSON (what goes into every image as hcikit/plan.json)'
complete -c hcikit -n "__fish_hcikit_using_subcommand plan" -s v -l verbose -d 'More log output (-v: debug, -vv: trace). Logs go to stderr'
complete -c hcikit -n "__fish_hcikit_using_subcommand plan" -s h -l help -d 'Print help'
complete -c hcikit -n "__fish_hcikit_using_subcommand plan" -s V -l version -d 'Print version'
complete -c hcikit -n "__fish_hcikit_using_subcommand render" -s o -l output -d 'Output folder; gets one sub-folder per node mirroring the target paths' -r -F
complete -c hcikit -n "__fish_hcikit_using_subcommand render" -l templates -d 'Folder of template overrides, laid out like the built-ins (e.g. `etc/hosts.hbs`); each file there replaces the built-in of the same relative path' -r -F
complete -c hcikit -n "__fish_hcikit_using_subcommand render" -l node -d 'Render only this node' -r
complete -c hcikit -n "__fish_hcikit_using_subcommand render" -l reveal-secrets -d 'Write secret values instead of `<redacted>` (secret files stay mode 0600)'
complete -c hcikit -n "__fish_hcikit_using_subcommand render" -s v -l verbose -d 'More log output (-v: debug, -vv: trace). Logs go to stderr'
complete -c hcikit -n "__fish_hcikit_using_subcommand render" -s h -l help -d 'Print help'
complete -c hcikit -n "__fish_hcikit_using_subcommand render" -s V -l version -d 'Print version'
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -s o -l out -d 'Output folder for images, bmaps, SHA256SUMS and manifest.json' -r -F
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -l base -d 'Base root filesystem. `proxmox`: real Proxmox VE nodes (Debian + Proxmox VE + the spec\'s Ceph), needs Proxmox\'s repositories or a mirror (--mirror) and Proxmox\'s archive key (--proxmox-key). `debian`: the same nodes without Proxmox VE, for trying hcikit offline and for the tests. Or a rootfs archive (.tar, .tar.zst, .tar.gz, .tar.xz). Default: the spec\'s image.base' -r
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -l mirror -d 'A mirror for one archive of a generated base, as KIND=URI (repeatable; overrides image.mirrors). KIND: debian, debian-security, proxmox (the PVE repository), ceph (the Ceph repository); URI: http://, https:// or file:/// (e.g. a proxmox-offline-mirror export)' -r
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -l proxmox-key -d 'Proxmox\'s archive key for `--base proxmox`: proxmox-archive-keyring-trixie.gpg (PVE 9) or proxmox-release-bookworm.gpg (PVE 8), checked against the checksum Proxmox publishes. Default: $HCIKIT_PROXMOX_KEY, else the key of a Proxmox build host' -r -F
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -l proxmox-key-sha256 -d 'The SHA-256 of --proxmox-key when it is a mirror\'s own signing key instead of Proxmox\'s. Default: $HCIKIT_PROXMOX_KEY_SHA256' -r
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -l format -d '`raw`: sparse `<node>.img`; `zst`: `<node>.img.zst` (the shared root compressed once)' -r -f -a "raw\t''
zst\t''"
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -l node -d 'Build only this node (repeatable). Default: every node' -r
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -l cache -d 'Cache folder for the root filesystem. Default: $XDG_CACHE_HOME/hcikit or ~/.cache/hcikit' -r -F
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -l agent -d 'The hcikit-firstboot binary to put into the root. Default: $HCIKIT_AGENT, or the one next to this executable' -r -F
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -l seed -d 'The cluster\'s secrets seed (created with mode 0600 if missing, never overwritten). Default: <spec dir>/<cluster>.secrets-seed' -r -F
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -l templates -d 'A folder of templates that replace the built-in ones file by file' -r -F
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -l pxe-url -d 'The URL OUT/pxe/ will be served at, e.g. http://10.0.0.5:8080. Default: port 8080 on the proxy-DHCP server (iPXE\'s ${next-server})' -r
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -l fleet -d 'One image that carries every node\'s files; each machine picks its own at first boot'
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -l installer -d 'One USB installer stick for every node (`<cluster>-installer.img`) instead of the node images: it boots, finds its node by MAC and writes that node\'s install-disk'
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -l pxe -d 'Also write OUT/pxe/: the network-install tree (iPXE script choosing the node by MAC, kernel, shared root, each node\'s disk head and tail, bmaps, pinned SHA-256, a dnsmasq example). Every node needs nodes[].mac'
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -s v -l verbose -d 'More log output (-v: debug, -vv: trace). Logs go to stderr'
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hcikit -n "__fish_hcikit_using_subcommand build" -s V -l version -d 'Print version'
complete -c hcikit -n "__fish_hcikit_using_subcommand inspect" -l json -d 'Print the report as JSON'
complete -c hcikit -n "__fish_hcikit_using_subcommand inspect" -s v -l verbose -d 'More log output (-v: debug, -vv: trace). Logs go to stderr'
complete -c hcikit -n "__fish_hcikit_using_subcommand inspect" -s h -l help -d 'Print help'
complete -c hcikit -n "__fish_hcikit_using_subcommand inspect" -s V -l version -d 'Print version'
complete -c hcikit -n "__fish_hcikit_using_subcommand flash" -l bmap -d 'The bmap to use (default: IMAGE.bmap, or x.img.bmap for x.img.zst)' -r -F
complete -c hcikit -n "__fish_hcikit_using_subcommand flash" -l no-bmap -d 'Write every block of the image, holes included (slower; for images without a bmap)'
complete -c hcikit -n "__fish_hcikit_using_subcommand flash" -s y -l yes -d 'Do not ask for confirmation'
complete -c hcikit -n "__fish_hcikit_using_subcommand flash" -l allow-file -d 'Accept a regular file as DEVICE (it must already be at least as big as the image)'
complete -c hcikit -n "__fish_hcikit_using_subcommand flash" -s v -l verbose -d 'More log output (-v: debug, -vv: trace). Logs go to stderr'
complete -c hcikit -n "__fish_hcikit_using_subcommand flash" -s h -l help -d 'Print help'
complete -c hcikit -n "__fish_hcikit_using_subcommand flash" -s V -l version -d 'Print version'
complete -c hcikit -n "__fish_hcikit_using_subcommand simulate" -l seed -d 'Seed for randomised faults' -r
complete -c hcikit -n "__fish_hcikit_using_subcommand simulate" -l fault -d 'Inject a fault (repeatable): late:NODE=SECS, absent:NODE, link-late:NODE/NETWORK=SECS, lock:NODE=N, task-error:NODE:COMMAND=N, kill:NODE@CALL, kill-after:NODE@CALL, random-kills=N, restart=SECS, reboot-failed=SECS, disk:NODE:DEV=ext4|gpt|lvm' -r
complete -c hcikit -n "__fish_hcikit_using_subcommand simulate" -l json -d 'Print the command log and the final world as JSON'
complete -c hcikit -n "__fish_hcikit_using_subcommand simulate" -l queries -d 'Show read-only queries in the timeline too'
complete -c hcikit -n "__fish_hcikit_using_subcommand simulate" -s v -l verbose -d 'More log output (-v: debug, -vv: trace). Logs go to stderr'
complete -c hcikit -n "__fish_hcikit_using_subcommand simulate" -s h -l help -d 'Print help'
complete -c hcikit -n "__fish_hcikit_using_subcommand simulate" -s V -l version -d 'Print version'
complete -c hcikit -n "__fish_hcikit_using_subcommand serve" -l listen -d 'Address and port to listen on, e.g. 10.0.0.5:8080 or 0.0.0.0:8080' -r
complete -c hcikit -n "__fish_hcikit_using_subcommand serve" -l json -d 'One JSON object per received report on stdout, for scripts'
complete -c hcikit -n "__fish_hcikit_using_subcommand serve" -s v -l verbose -d 'More log output (-v: debug, -vv: trace). Logs go to stderr'
complete -c hcikit -n "__fish_hcikit_using_subcommand serve" -s h -l help -d 'Print help'
complete -c hcikit -n "__fish_hcikit_using_subcommand serve" -s V -l version -d 'Print version'
complete -c hcikit -n "__fish_hcikit_using_subcommand completions" -s v -l verbose -d 'More log output (-v: debug, -vv: trace). Logs go to stderr'
complete -c hcikit -n "__fish_hcikit_using_subcommand completions" -s h -l help -d 'Print help'
complete -c hcikit -n "__fish_hcikit_using_subcommand completions" -s V -l version -d 'Print version'
complete -c hcikit -n "__fish_hcikit_using_subcommand man" -s v -l verbose -d 'More log output (-v: debug, -vv: trace). Logs go to stderr'
complete -c hcikit -n "__fish_hcikit_using_subcommand man" -s h -l help -d 'Print help'
complete -c hcikit -n "__fish_hcikit_using_subcommand man" -s V -l version -d 'Print version'
complete -c hcikit -n "__fish_hcikit_using_subcommand schema" -s v -l verbose -d 'More log output (-v: debug, -vv: trace). Logs go to stderr'
complete -c hcikit -n "__fish_hcikit_using_subcommand schema" -s h -l help -d 'Print help'
complete -c hcikit -n "__fish_hcikit_using_subcommand schema" -s V -l version -d 'Print version'
complete -c hcikit -n "__fish_hcikit_using_subcommand help; and not __fish_seen_subcommand_from validate plan render build inspect flash simulate serve completions man schema help" -f -a "validate" -d 'Check a cluster spec and report every problem at once'
complete -c hcikit -n "__fish_hcikit_using_subcommand help; and not __fish_seen_subcommand_from validate plan render build inspect flash simulate serve completions man schema help" -f -a "plan" -d 'Show the resolved plan: nodes, networks, links, disks, first-boot steps'
complete -c hcikit -n "__fish_hcikit_using_subcommand help; and not __fish_seen_subcommand_from validate plan render build inspect flash simulate serve completions man schema help" -f -a "render" -d 'Render every node\'s configuration files into a folder (secrets redacted)'
complete -c hcikit -n "__fish_hcikit_using_subcommand help; and not __fish_seen_subcommand_from validate plan render build inspect flash simulate serve completions man schema help" -f -a "build" -d 'Build bootable disk images for every node'
complete -c hcikit -n "__fish_hcikit_using_subcommand help; and not __fish_seen_subcommand_from validate plan render build inspect flash simulate serve completions man schema help" -f -a "inspect" -d 'Show what an image holds: partitions, ESP files, node identity, checksums'
complete -c hcikit -n "__fish_hcikit_using_subcommand help; and not __fish_seen_subcommand_from validate plan render build inspect flash simulate serve completions man schema help" -f -a "flash" -d 'Write an image to a block device using its bmap, then verify it'
complete -c hcikit -n "__fish_hcikit_using_subcommand help; and not __fish_seen_subcommand_from validate plan render build inspect flash simulate serve completions man schema help" -f -a "simulate" -d 'Run the whole first boot of every node against the simulated cluster'
complete -c hcikit -n "__fish_hcikit_using_subcommand help; and not __fish_seen_subcommand_from validate plan render build inspect flash simulate serve completions man schema help" -f -a "serve" -d 'Serve a --pxe tree over HTTP and show the fleet\'s install and first-boot progress'
complete -c hcikit -n "__fish_hcikit_using_subcommand help; and not __fish_seen_subcommand_from validate plan render build inspect flash simulate serve completions man schema help" -f -a "completions" -d 'Print shell completions'
complete -c hcikit -n "__fish_hcikit_using_subcommand help; and not __fish_seen_subcommand_from validate plan render build inspect flash simulate serve completions man schema help" -f -a "man" -d 'Print the man page (roff)'
complete -c hcikit -n "__fish_hcikit_using_subcommand help; and not __fish_seen_subcommand_from validate plan render build inspect flash simulate serve completions man schema help" -f -a "schema" -d 'Print the JSON Schema of cluster.toml'
complete -c hcikit -n "__fish_hcikit_using_subcommand help; and not __fish_seen_subcommand_from validate plan render build inspect flash simulate serve completions man schema help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
