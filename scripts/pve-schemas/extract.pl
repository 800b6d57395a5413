#!/usr/bin/perl
# Dumps the parameter schemas of every Proxmox command and API path the hcikit first-boot
# agent uses, read from Proxmox's own Perl API modules, as JSON on stdout.
#
# Usage (extract.sh does this for each PVE major):
#   perl extract.pl --major 9 --commit pve-common=<sha> ... -I <tree>/pve-common/src ...
#
# It loads the real API modules (PVE::API2::*, PVE::CLI::*) from exported source trees.
# Modules those need but that are not part of the exported trees (XS bindings such as
# PVE::RADOS and PVE::IPCC, perl-rs PVE::RS::*, qemu-server, pve-container, ...) are
# replaced by an @INC hook with empty stub packages: parameter schemas are plain data
# built at load time, so the stubs never change them. A schema that would need a stub to
# compute a value shows up as a missing key, never as an invented one.
use strict;
use warnings;

use Getopt::Long;
use JSON;
use re qw(regexp_pattern);

my $major;
my %commit;
my %version;
my @inc;
GetOptions(
    'major=i' => \$major,
    'commit=s' => \%commit,
    'version=s' => \%version,
    'I=s' => \@inc,
) or die "usage: extract.pl --major N --commit repo=sha ... -I dir ...\n";
die "--major is required\n" if !$major;

my %stubbed;

# A module of the exported trees that is only a shell around compiled code (XSLoader,
# e.g. pve-cluster's PVE::IPCC) cannot load without its shared object: stub it too.
sub is_xs_shell {
    my ($file) = @_;
    for my $dir (@inc) {
        my $path = "$dir/$file";
        next if !-f $path;
        open(my $fh, '<', $path) or return 0;
        local $/;
        my $text = <$fh>;
        return $text =~ m/XSLoader::load|bootstrap\s+\S+/ ? 1 : 0;
    }
    return 0;
}

# Modules that sit on the load path of PVE::API2::Cluster but define nothing the agent
# calls (ACME plugin registries, metric servers, QEMU CPU models): their load-time registration needs
# plugin data or qemu-server options that are not present here, so they are stubbed.
my $irrelevant = qr{^PVE/(API2/ACME|ACME|Status/(InfluxDB|Graphite|OpenTelemetry)|API2/Cluster/Qemu/)};

unshift @INC, sub {
    my (undef, $file) = @_;
    return stub($file) if $file =~ $irrelevant;
    return if !is_xs_shell($file);
    return stub($file);
}, @inc;
push @INC, sub {
    my (undef, $file) = @_;
    # Optional modules that callers probe with eval (and absolute paths) stay missing.
    return if $file !~ m/\.pm$/ || $file =~ m{^/|^(Encode|Sys|Log|PadWalker)\b};
    return stub($file);
};

sub stub {
    my ($file) = @_;
    (my $pkg = $file) =~ s/\.pm$//;
    $pkg =~ s{/}{::}g;
    $stubbed{$pkg} = 1;
    my $src = <<"EOS";
package $pkg;
our \$AUTOLOAD;
sub AUTOLOAD { return; }
sub DESTROY { }
sub import {
    my \$class = shift;
    my \$caller = caller;
    no strict 'refs';
    for my \$sym (\@_) {
        next if ref(\$sym) || \$sym =~ m/^[:\\-!]/;
        if (\$sym =~ m/^\\\$(.+)/) { *{"\${caller}::\$1"} = \\my \$x; }
        elsif (\$sym =~ m/^\\\@(.+)/) { *{"\${caller}::\$1"} = []; }
        elsif (\$sym =~ m/^\\%(.+)/) { *{"\${caller}::\$1"} = {}; }
        else { (my \$n = \$sym) =~ s/^&//; *{"\${caller}::\$n"} = sub { return; }; }
    }
}
1;
EOS
    open(my $fh, '<', \$src) or die "stub for $pkg: $!\n";
    return $fh;
}

# Keep module load-time side effects (syslog, /etc/pve reads) away from the host.
$ENV{PATH} = '/nonexistent';
local $SIG{__WARN__} = sub { };

require PVE::JSONSchema;
require PVE::RESTHandler;

# The CLI commands the agent runs: tool, subcommand words, CLI module (whose $cmddef maps
# the words to an API class, method and positional parameters).
my @cli = (
    ['pvecm', 'create', 'PVE::CLI::pvecm'],
    ['pvecm', 'add', 'PVE::CLI::pvecm'],
    ['pveceph', 'install', 'PVE::CLI::pveceph'],
    ['pveceph', 'init', 'PVE::CLI::pveceph'],
    ['pveceph', 'mon create', 'PVE::CLI::pveceph'],
    ['pveceph', 'mgr create', 'PVE::CLI::pveceph'],
    ['pveceph', 'osd create', 'PVE::CLI::pveceph'],
    ['pveceph', 'mds create', 'PVE::CLI::pveceph'],
    ['pveceph', 'pool create', 'PVE::CLI::pveceph'],
    ['pveceph', 'fs create', 'PVE::CLI::pveceph'],
    ['pveum', 'realm add', 'PVE::CLI::pveum'],
    ['pveum', 'user modify', 'PVE::CLI::pveum'],
    ['ha-manager', 'add', 'PVE::CLI::ha_manager'],
    ['ha-manager', 'groupadd', 'PVE::CLI::ha_manager'],
    ['ha-manager', 'rules add', 'PVE::CLI::ha_manager'],
);

# The API paths the agent calls through pvesh: verb, absolute path, the class mounted at
# the path's prefix (pve-manager PVE/API2.pm and PVE/API2/Cluster.pm register_method
# subclass mounts), and the path inside that class.
my @api = (
    ['get', '/cluster/status', 'PVE::API2::Cluster', 'status'],
    ['get', '/cluster/options', 'PVE::API2::Cluster', 'options'],
    ['set', '/cluster/options', 'PVE::API2::Cluster', 'options'],
    ['get', '/storage', 'PVE::API2::Storage::Config', ''],
    ['create', '/storage', 'PVE::API2::Storage::Config', ''],
    ['get', '/access/domains', 'PVE::API2::Domains', ''],
    ['create', '/access/domains', 'PVE::API2::Domains', ''],
    ['get', '/access/users/{userid}', 'PVE::API2::User', '{userid}'],
    ['get', '/cluster/ha/groups', 'PVE::API2::HA::Groups', ''],
    ['get', '/cluster/ha/rules', 'PVE::API2::HA::Rules', ''],
    ['get', '/cluster/notifications/endpoints/smtp', 'PVE::API2::Cluster::Notifications', 'endpoints/smtp'],
    ['create', '/cluster/notifications/endpoints/smtp', 'PVE::API2::Cluster::Notifications', 'endpoints/smtp'],
    ['get', '/cluster/notifications/matchers', 'PVE::API2::Cluster::Notifications', 'matchers'],
    ['create', '/cluster/notifications/matchers', 'PVE::API2::Cluster::Notifications', 'matchers'],
    ['set', '/cluster/notifications/matchers/{name}', 'PVE::API2::Cluster::Notifications', 'matchers/{name}'],
    ['create', '/cluster/notifications/targets/{name}/test', 'PVE::API2::Cluster::Notifications', 'targets/{name}/test'],
    ['get', '/nodes/{node}/tasks', 'PVE::API2::Tasks', ''],
    ['get', '/nodes/{node}/tasks/{upid}/status', 'PVE::API2::Tasks', '{upid}/status'],
);
my %verb_method = (get => 'GET', set => 'PUT', create => 'POST', delete => 'DELETE');

my %formats_used;

# Schema data without code references and prose; named formats are collected so their
# definitions (or the fact that they are code) can be dumped once.
sub clean {
    my ($v) = @_;
    my $r = ref($v);
    if ($r eq 'HASH') {
        my $out = {};
        for my $k (sort keys %$v) {
            next if $k =~ m/^(description|verbose_description|format_description|completion|typetext|print_width|renderer|title)$/;
            my $c = clean($v->{$k});
            next if !defined($c) && defined($v->{$k});
            $formats_used{ $v->{$k} } = 1 if $k eq 'format' && !ref($v->{$k});
            $out->{$k} = $c;
        }
        return $out;
    } elsif ($r eq 'ARRAY') {
        return [map { clean($_) } @$v];
    } elsif ($r eq 'CODE' || $r eq 'GLOB') {
        return undef;
    } elsif ($r eq 'Regexp') {
        # Emitted as the bare pattern with its flags, e.g. `(?i)^[a-z]+$`; the API
        # anchors patterns itself (JSONSchema check_prop: m/^$pattern$/).
        my ($pat, $mods) = re::regexp_pattern($v);
        return $mods ? "(?$mods)$pat" : $pat;
    } elsif (JSON::is_bool($v)) {
        return $v ? JSON::true : JSON::false;
    }
    return $v;
}

sub method_info {
    my ($class, $name) = @_;
    my $info = eval { $class->map_method_by_name($name) };
    return $info;
}

sub load {
    my ($module) = @_;
    (my $file = "$module.pm") =~ s{::}{/}g;
    eval { require $file; 1 } or return "$@";
    return;
}

my $out = {
    'pve-major' => $major,
    sources => \%commit,
    versions => \%version,
    generator => 'scripts/pve-schemas/extract.pl',
    cli => {},
    api => {},
    missing => [],
};

for my $c (@cli) {
    my ($tool, $words, $module) = @$c;
    my $key = "$tool $words";
    if (my $err = load($module)) {
        push $out->{missing}->@*, { command => $key, why => "loading $module: " . (split /\n/, $err)[0] };
        next;
    }
    my $def = do { no strict 'refs'; ${"${module}::cmddef"} };
    for my $w (split / /, $words) {
        last if ref($def) ne 'HASH';
        $def = $def->{$w};
        # `{ alias => 'other words' }` entries: follow them like CLIHandler resolve_cmd.
        if (ref($def) eq 'HASH' && exists $def->{alias}) {
            my $t = do { no strict 'refs'; ${"${module}::cmddef"} };
            $t = $t->{$_} for split / /, $def->{alias};
            $def = $t;
        }
    }
    if (ref($def) ne 'ARRAY') {
        push $out->{missing}->@*, { command => $key, why => "no such command in ${module}::cmddef" };
        next;
    }
    my ($class, $name, $arg_param, $fixed) = @$def;
    load($class);
    my $info = method_info($class, $name);
    if (!$info) {
        push $out->{missing}->@*, { command => $key, why => "$class has no method $name" };
        next;
    }
    $out->{cli}->{$key} = {
        class => $class,
        method => $name,
        http => $info->{method},
        path => $info->{path},
        'arg-param' => ref($arg_param) ? $arg_param : defined($arg_param) ? [$arg_param] : [],
        # Fixed parameters are filled in by the CLI (e.g. node => this host's name); only
        # their names matter, the values are this machine's.
        'fixed-param' => [sort keys %{ $fixed // {} }],
        # The output sub of a $cmddef entry: pveceph's and pvecm's $upid_exit make the CLI
        # exit with the task's status; without it the CLI exits 0 after a failed task.
        'upid-exit' => (defined($def->[4]) ? JSON::true : JSON::false),
        protected => ($info->{protected} ? JSON::true : JSON::false),
        parameters => clean($info->{parameters}),
        returns => clean($info->{returns}),
    };
}

for my $a (@api) {
    my ($verb, $path, $class, $rel) = @$a;
    my $key = "$verb $path";
    if (my $err = load($class)) {
        push $out->{missing}->@*, { command => "pvesh $key", why => "loading $class: " . (split /\n/, $err)[0] };
        next;
    }
    my ($info) = grep {
        ($_->{path} // '') eq $rel && ($_->{method} // '') eq $verb_method{$verb}
    } @{ $class->method_attributes() // [] };
    if (!$info) {
        push $out->{missing}->@*, { command => "pvesh $key", why => "$class has no $verb_method{$verb} $rel" };
        next;
    }
    $out->{api}->{$key} = {
        class => $class,
        method => $info->{name},
        http => $info->{method},
        protected => ($info->{protected} ? JSON::true : JSON::false),
        parameters => clean($info->{parameters}),
        returns => clean($info->{returns}),
    };
}

# Named formats: property-string formats are data (dumped), the others are Perl code that
# the simulator reimplements (see sim's format checks, which cite the same subs).
my $fmt = {};
my %seen;
my @todo = sort keys %formats_used;
while (defined(my $f = shift @todo)) {
    next if $seen{$f}++;
    my $def = eval { PVE::JSONSchema::get_format($f) };
    if (ref($def) eq 'HASH') {
        $fmt->{$f} = { kind => 'property-string', properties => clean($def) };
        push @todo, grep { !$seen{$_} } keys %formats_used;
    } elsif (ref($def) eq 'CODE') {
        $fmt->{$f} = { kind => 'code' };
    } elsif (ref($def) eq 'ARRAY') {
        $fmt->{$f} = { kind => 'code-with-validator', properties => clean($def->[0] // {}) };
    } else {
        $fmt->{$f} = { kind => 'unregistered' };
    }
}
$out->{formats} = $fmt;
{
    no warnings 'once';
    $out->{'standard-output-options'} = clean($PVE::RESTHandler::standard_output_options // {});
}
$out->{stubbed} = [sort keys %stubbed];

print JSON->new->canonical->pretty->encode($out);
