"""Vendor providers (render, cloudflare, supabase, s3: ``base.Provider``, by name in ``registry``) and the
protocol clients (dns, tls, postgres), each built from the inventory."""
