"""Twin of the Cloudflare API v4: zones, DNS records, zone settings, Pages, API tokens and /ips."""
