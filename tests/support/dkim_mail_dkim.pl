#!/usr/bin/perl
# Interop helper for tests/e2e_dkim_interop.sh: Perl's Mail::DKIM
# (libmail-dkim-perl) verifies messages through the test DNS server, or
# signs one with an RSA key.
#   dkim_mail_dkim.pl verify ADDR:PORT FILE...   prints "FILE result detail" per signature
#   dkim_mail_dkim.pl sign KEYFILE DOMAIN SELECTOR CANON < msg > signed
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Mail::DKIM::Signer;
use Mail::DKIM::DNS;
use Net::DNS::Resolver;

my $cmd = shift @ARGV or die "usage\n";

# Mail::DKIM wants CRLF line ends and a final CRLF (as SMTP DATA has); its
# simple body canonicalization does not add a missing one (RFC 6376 §3.4.3
# does), so one is added here: the canonical body stays the same.
sub crlf { my $s = shift; $s =~ s/\r?\n/\r\n/g; $s .= "\r\n" unless $s =~ /\r\n\z/ || $s eq ''; return $s; }

if ($cmd eq 'verify') {
    my ($host, $port) = split /:/, shift @ARGV;
    my $res = Net::DNS::Resolver->new(nameservers => [$host], port => $port,
                                      recurse => 1, udp_timeout => 5, tcp_timeout => 5,
                                      retry => 1);
    Mail::DKIM::DNS::resolver($res);
    for my $file (@ARGV) {
        open my $fh, '<:raw', $file or die "$file: $!\n";
        my $msg = crlf(do { local $/; <$fh> });
        close $fh;
        my $v = Mail::DKIM::Verifier->new();
        $v->PRINT($msg);
        $v->CLOSE();
        my @sigs = $v->signatures;
        print "$file none no-signature\n" unless @sigs;
        for my $s (@sigs) {
            my $detail = $s->result_detail // '';
            $detail =~ s/\s+/_/g;
            print "$file ", $s->result, " $detail\n";
        }
    }
} elsif ($cmd eq 'sign') {
    my ($key, $domain, $selector, $canon) = @ARGV;
    my $msg = crlf(do { local $/; <STDIN> });   # $/ must be back for the key file
    my $s = Mail::DKIM::Signer->new(Algorithm => 'rsa-sha256', Method => $canon,
                                    Domain => $domain, Selector => $selector,
                                    KeyFile => $key);
    $s->PRINT($msg);
    $s->CLOSE();
    my $sig = $s->signature->as_string;
    print $sig, "\r\n", $msg;
} else {
    die "unknown command $cmd\n";
}
