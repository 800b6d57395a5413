#compdef hcikit

autoload -U is-at-least

_hcikit() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'*-v[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'*--verbose[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_hcikit_commands" \
"*::: :->hcikit" \
&& ret=0
    case $state in
    (hcikit)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:hcikit-command-$line[1]:"
        case $line[1] in
            (validate)
_arguments "${_arguments_options[@]}" : \
'--json[Print a JSON report ({ok, nodes, networks, errors, warnings}) for scripts]' \
'*-v[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'*--verbose[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':spec -- The cluster spec, e.g. cluster.toml:_files' \
&& ret=0
;;
(plan)
_arguments "${_arguments_options[@]}" : \
'--json[Print the Plan as JSON (what goes into every image as hcikit/plan.json)]' \
'*-v[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'*--verbose[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':spec -- The cluster spec, e.g. cluster.toml:_files' \
&& ret=0
;;
(render)
_arguments "${_arguments_options[@]}" : \
'-o+[Output folder; gets one sub-folder per node mirroring the target paths]:DIR:_files' \
'--output=[Output folder; gets one sub-folder per node mirroring the target paths]:DIR:_files' \
'--templates=[Folder of template overrides, laid out like the built-ins (e.g. \`etc/hosts.hbs\`); each file there replaces the built-in of the same relative path]:DIR:_files' \
'--node=[Render only this node]:NAME:_default' \
'--reveal-secrets[Write secret values instead of \`<redacted>\` (secret files stay mode 0600)]' \
'*-v[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'*--verbose[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':spec -- The cluster spec:_files' \
&& ret=0
;;
(build)
_arguments "${_arguments_options[@]}" : \
'-o+[Output folder for images, bmaps, SHA256SUMS and manifest.json]:DIR:_files' \
'--out=[Output folder for images, bmaps, SHA256SUMS and manifest.json]:DIR:_files' \
'--base=[Base root filesystem. \`proxmox\`\: real Proxmox VE nodes (Debian + Proxmox VE + the spec'\''s Ceph), needs Proxmox'\''s repositories or a mirror (--mirror) and Proxmox'\''s archive key (--proxmox-key). \`debian\`\: the same nodes without Proxmox VE, for trying hcikit offline and for the tests. Or a rootfs archive (.tar, .tar.zst, .tar.gz, .tar.xz). Default\: the spec'\''s image.base]:FILE|debian|proxmox:_default' \
'*--mirror=[A mirror for one archive of a generated base, as KIND=URI (repeatable; overrides image.mirrors). KIND\: debian, debian-security, proxmox (the PVE repository), ceph (the Ceph repository); URI\: http\://, https\:// or file\:/// (e.g. a proxmox-offline-mirror export)]:KIND=URI:_default' \
'--proxmox-key=[Proxmox'\''s archive key for \`--base proxmox\`\: proxmox-archive-keyring-trixie.gpg (PVE 9) or proxmox-release-bookworm.gpg (PVE 8), checked against the checksum Proxmox publishes. Default\: \$HCIKIT_PROXMOX_KEY, else the key of a Proxmox build host]:FILE:_files' \
'--proxmox-key-sha256=[The SHA-256 of --proxmox-key when it is a mirror'\''s own signing key instead of Proxmox'\''s. Default\: \$HCIKIT_PROXMOX_KEY_SHA256]:HEX:_default' \
'--format=[\`raw\`\: sparse \`<node>.img\`; \`zst\`\: \`<node>.img.zst\` (the shared root compressed once)]:FORMAT:(raw zst)' \
'*--node=[Build only this node (repeatable). Default\: every node]:NAME:_default' \
'--cache=[Cache folder for the root filesystem. Default\: \$XDG_CACHE_HOME/hcikit or ~/.cache/hcikit]:DIR:_files' \
'--agent=[The hcikit-firstboot binary to put into the root. Default\: \$HCIKIT_AGENT, or the one next to this executable]:PATH:_files' \
'--seed=[The cluster'\''s secrets seed (created with mode 0600 if missing, never overwritten). Default\: <spec dir>/<cluster>.secrets-seed]:FILE:_files' \
'--templates=[A folder of templates that replace the built-in ones file by file]:DIR:_files' \
'--pxe-url=[The URL OUT/pxe/ will be served at, e.g. http\://10.0.0.5\:8080. Default\: port 8080 on the proxy-DHCP server (iPXE'\''s \${next-server})]:URL:_default' \
'--fleet[One image that carries every node'\''s files; each machine picks its own at first boot]' \
'(--fleet --node --pxe)--installer[One USB installer stick for every node (\`<cluster>-installer.img\`) instead of the node images\: it boots, finds its node by MAC and writes that node'\''s install-disk]' \
'--pxe[Also write OUT/pxe/\: the network-install tree (iPXE script choosing the node by MAC, kernel, shared root, each node'\''s disk head and tail, bmaps, pinned SHA-256, a dnsmasq example). Every node needs nodes\[\].mac]' \
'*-v[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'*--verbose[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
':spec -- The cluster spec, e.g. cluster.toml:_files' \
&& ret=0
;;
(inspect)
_arguments "${_arguments_options[@]}" : \
'--json[Print the report as JSON]' \
'*-v[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'*--verbose[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':image -- An image built by `hcikit build`\: `<node>.img` or `<node>.img.zst`:_files' \
&& ret=0
;;
(flash)
_arguments "${_arguments_options[@]}" : \
'(--no-bmap)--bmap=[The bmap to use (default\: IMAGE.bmap, or x.img.bmap for x.img.zst)]:FILE:_files' \
'--no-bmap[Write every block of the image, holes included (slower; for images without a bmap)]' \
'-y[Do not ask for confirmation]' \
'--yes[Do not ask for confirmation]' \
'--allow-file[Accept a regular file as DEVICE (it must already be at least as big as the image)]' \
'*-v[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'*--verbose[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':image -- The image\: a raw `.img` or a zstd-compressed `.img.zst`:_files' \
':device -- The whole disk to overwrite, e.g. /dev/sdb. Partitions, mounted disks and the disk holding / are refused:_files' \
&& ret=0
;;
(simulate)
_arguments "${_arguments_options[@]}" : \
'--seed=[Seed for randomised faults]:SEED:_default' \
'*--fault=[Inject a fault (repeatable)\: late\:NODE=SECS, absent\:NODE, link-late\:NODE/NETWORK=SECS, lock\:NODE=N, task-error\:NODE\:COMMAND=N, kill\:NODE@CALL, kill-after\:NODE@CALL, random-kills=N, restart=SECS, reboot-failed=SECS, disk\:NODE\:DEV=ext4|gpt|lvm]:FAULT:_default' \
'--json[Print the command log and the final world as JSON]' \
'--queries[Show read-only queries in the timeline too]' \
'*-v[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'*--verbose[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':spec -- The cluster spec, e.g. cluster.toml:_files' \
&& ret=0
;;
(serve)
_arguments "${_arguments_options[@]}" : \
'--listen=[Address and port to listen on, e.g. 10.0.0.5\:8080 or 0.0.0.0\:8080]:ADDR:_default' \
'--json[One JSON object per received report on stdout, for scripts]' \
'*-v[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'*--verbose[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':dir -- The folder to serve, e.g. out/pxe from `hcikit build --pxe`:_files' \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
'*-v[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'*--verbose[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':shell -- Shell to generate completions for:(bash elvish fish powershell zsh)' \
&& ret=0
;;
(man)
_arguments "${_arguments_options[@]}" : \
'*-v[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'*--verbose[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(schema)
_arguments "${_arguments_options[@]}" : \
'*-v[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'*--verbose[More log output (-v\: debug, -vv\: trace). Logs go to stderr]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_hcikit__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:hcikit-help-command-$line[1]:"
        case $line[1] in
            (validate)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(plan)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(render)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(build)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(inspect)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(flash)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(simulate)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(serve)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(man)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(schema)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_hcikit_commands] )) ||
_hcikit_commands() {
    local commands; commands=(
'validate:Check a cluster spec and report every problem at once' \
'plan:Show the resolved plan\: nodes, networks, links, disks, first-boot steps' \
'render:Render every node'\''s configuration files into a folder (secrets redacted)' \
'build:Build bootable disk images for every node' \
'inspect:Show what an image holds\: partitions, ESP files, node identity, checksums' \
'flash:Write an image to a block device using its bmap, then verify it' \
'simulate:Run the whole first boot of every node against the simulated cluster' \
'serve:Serve a --pxe tree over HTTP and show the fleet'\''s install and first-boot progress' \
'completions:Print shell completions' \
'man:Print the man page (roff)' \
'schema:Print the JSON Schema of cluster.toml' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'hcikit commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__build_commands] )) ||
_hcikit__subcmd__build_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit build commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__completions_commands] )) ||
_hcikit__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit completions commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__flash_commands] )) ||
_hcikit__subcmd__flash_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit flash commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__help_commands] )) ||
_hcikit__subcmd__help_commands() {
    local commands; commands=(
'validate:Check a cluster spec and report every problem at once' \
'plan:Show the resolved plan\: nodes, networks, links, disks, first-boot steps' \
'render:Render every node'\''s configuration files into a folder (secrets redacted)' \
'build:Build bootable disk images for every node' \
'inspect:Show what an image holds\: partitions, ESP files, node identity, checksums' \
'flash:Write an image to a block device using its bmap, then verify it' \
'simulate:Run the whole first boot of every node against the simulated cluster' \
'serve:Serve a --pxe tree over HTTP and show the fleet'\''s install and first-boot progress' \
'completions:Print shell completions' \
'man:Print the man page (roff)' \
'schema:Print the JSON Schema of cluster.toml' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'hcikit help commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__help__subcmd__build_commands] )) ||
_hcikit__subcmd__help__subcmd__build_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit help build commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__help__subcmd__completions_commands] )) ||
_hcikit__subcmd__help__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit help completions commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__help__subcmd__flash_commands] )) ||
_hcikit__subcmd__help__subcmd__flash_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit help flash commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__help__subcmd__help_commands] )) ||
_hcikit__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit help help commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__help__subcmd__inspect_commands] )) ||
_hcikit__subcmd__help__subcmd__inspect_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit help inspect commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__help__subcmd__man_commands] )) ||
_hcikit__subcmd__help__subcmd__man_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit help man commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__help__subcmd__plan_commands] )) ||
_hcikit__subcmd__help__subcmd__plan_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit help plan commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__help__subcmd__render_commands] )) ||
_hcikit__subcmd__help__subcmd__render_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit help render commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__help__subcmd__schema_commands] )) ||
_hcikit__subcmd__help__subcmd__schema_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit help schema commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__help__subcmd__serve_commands] )) ||
_hcikit__subcmd__help__subcmd__serve_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit help serve commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__help__subcmd__simulate_commands] )) ||
_hcikit__subcmd__help__subcmd__simulate_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit help simulate commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__help__subcmd__validate_commands] )) ||
_hcikit__subcmd__help__subcmd__validate_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit help validate commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__inspect_commands] )) ||
_hcikit__subcmd__inspect_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit inspect commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__man_commands] )) ||
_hcikit__subcmd__man_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit man commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__plan_commands] )) ||
_hcikit__subcmd__plan_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit plan commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__render_commands] )) ||
_hcikit__subcmd__render_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit render commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__schema_commands] )) ||
_hcikit__subcmd__schema_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit schema commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__serve_commands] )) ||
_hcikit__subcmd__serve_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit serve commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__simulate_commands] )) ||
_hcikit__subcmd__simulate_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit simulate commands' commands "$@"
}
(( $+functions[_hcikit__subcmd__validate_commands] )) ||
_hcikit__subcmd__validate_commands() {
    local commands; commands=()
    _describe -t commands 'hcikit validate commands' commands "$@"
}

if [ "$funcstack[1]" = "_hcikit" ]; then
    _hcikit "$@"
else
    compdef _hcikit hcikit
fi
