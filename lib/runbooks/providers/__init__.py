"""One module per vendor (cloudflare, render, supabase, s3, postgres, dns, tls), built from the inventory."""
