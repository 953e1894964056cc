"""Inbound formats: each module turns one sender's JSON body into the router's `Alert`s."""
