! Surface-layer turbulence: Monin-Obukhov similarity between a surface and the forcing height.
!
! Stability functions: Businger-Dyer (Businger et al. 1971, Dyer 1974) phi_m = (1 - 16 zeta)^(-1/4),
! phi_h = (1 - 16 zeta)^(-1/2) for unstable air with Paulson's (1970) integrated forms psi_m, psi_h;
! phi = 1 + 5 zeta for 0 <= zeta <= 1. Very unstable and very stable limits as Zeng, Zhao and Dickinson
! (1998, J. Climate 11, 2628) and CLM/CoLM: free-convection matching phi_m = 0.7 k^(2/3) (-zeta)^(1/3) below
! zeta = -1.574 (momentum) and phi_h = 0.9 k^(4/3) (-zeta)^(-1/3) below zeta = -0.465 (heat and vapour),
! phi = 5 + zeta above zeta = 1. zeta is kept in [-100, 2] (CoLM/CLM bounds).
! Low wind: Beljaars (1995) convective velocity w* = (-g u* theta_v* z_i / theta_v)^(1/3), z_i = 1000 m,
! added to the mean wind in unstable air; a minimum wind of 0.1 m s-1 otherwise (CoLM).
! Thermal roughness of bare soil and snow: Zeng and Dickinson (1998), z0h = z0m exp(-0.13 (u* z0m / nu)^0.45).
! Saturation humidity: Buck (1981) over water (T > tfrz) and over ice, with the analytic derivative.
module colm_turbulence
  use, intrinsic :: iso_fortran_env, only: int64
  use colm_const, only: r8, grav, vonkar, tfrz
  implicit none
  private
  public :: psi_m_paulson, psi_h_paulson, mo_profile, obukhov_initial, obukhov_update
  public :: thermal_roughness, log_z0m_z0h, qsat, relax_obukhov, wind_min, zeta_min, zeta_max, zi_pbl

  real(r8), parameter :: wind_min = 0.1_r8     ! minimum wind speed (m s-1), CoLM
  real(r8), parameter :: zeta_min = -100.0_r8  ! lower bound of z/L (-)
  real(r8), parameter :: zeta_max = 2.0_r8     ! upper bound of z/L (-)
  real(r8), parameter :: zeta_eps = 1.0e-6_r8  ! smallest |z/L| kept (-)
  real(r8), parameter :: zetam = 1.574_r8      ! z/L where the momentum profile turns to free convection (-)
  real(r8), parameter :: zetat = 0.465_r8      ! same for heat and vapour (-)
  real(r8), parameter :: zi_pbl = 1000.0_r8    ! convective boundary layer height for w* (m)
  real(r8), parameter :: beta_w = 1.0_r8       ! coefficient of the convective velocity (-)
  real(r8), parameter :: nu_air = 1.5e-5_r8    ! kinematic viscosity of air (m2 s-1)
  ! Constants of the free-convection branches, evaluated at compile time: x = (1 + 16 zetam)^(1/4) (-),
  ! psi_m(-zetam), psi_h(-zetat) (-), zetam^(1/3), zetat^(-1/3) (-)
  real(r8), parameter :: x_zetam = sqrt(sqrt(1.0_r8 + 16.0_r8 * zetam))
  real(r8), parameter :: psim_zetam = 2.0_r8 * log(0.5_r8 * (1.0_r8 + x_zetam)) &
                                      + log(0.5_r8 * (1.0_r8 + x_zetam * x_zetam)) - 2.0_r8 * atan(x_zetam) &
                                      + 2.0_r8 * atan(1.0_r8)
  real(r8), parameter :: psih_zetat = 2.0_r8 * log(0.5_r8 * (1.0_r8 + sqrt(1.0_r8 + 16.0_r8 * zetat)))
  real(r8), parameter :: zetam_13 = zetam**(1.0_r8/3.0_r8)
  real(r8), parameter :: zetat_m13 = zetat**(-1.0_r8/3.0_r8)

contains

  ! Paulson (1970) integrated momentum stability function for zeta < 0; x = (1 - 16 zeta)^(1/4).
  ! 2 log((1+x)/2) + log((1+x^2)/2) as one log (the argument lies in [1, 275] for zeta in [-100, 0]).
  elemental real(r8) function psi_m_paulson(zeta) result(psi)
    real(r8), intent(in) :: zeta                ! z / L, <= 0 (-)
    real(r8) :: x                               ! (1 - 16 zeta)^(1/4) (-)
    x = sqrt(sqrt(1.0_r8 - 16.0_r8 * zeta))
    psi = log(0.125_r8 * (1.0_r8 + x) * (1.0_r8 + x) * (1.0_r8 + x * x)) - 2.0_r8 * atan(x) &
          + 2.0_r8 * atan(1.0_r8)
  end function psi_m_paulson

  ! Paulson (1970) integrated heat / vapour stability function for zeta < 0.
  elemental real(r8) function psi_h_paulson(zeta) result(psi)
    real(r8), intent(in) :: zeta                ! z / L, <= 0 (-)
    real(r8) :: x                               ! (1 - 16 zeta)^(1/4) (-)
    x = sqrt(sqrt(1.0_r8 - 16.0_r8 * zeta))
    psi = 2.0_r8 * log(0.5_r8 * (1.0_r8 + x * x))
  end function psi_h_paulson

  ! Integrated flux-profile functions between the roughness length and zldis (Zeng et al. 1998, Eqs. 8-13):
  ! u = u*/k fm, theta - theta_s = theta*/k fh, q - q_s = q*/k fq.
  pure subroutine mo_profile(zldis, z0m, z0h, z0q, obu, fm, fh, fq, lzm, lzh)
    real(r8), intent(in) :: zldis               ! reference height minus displacement height (m)
    real(r8), intent(in) :: z0m                 ! roughness length, momentum (m)
    real(r8), intent(in) :: z0h                 ! roughness length, heat (m)
    real(r8), intent(in) :: z0q                 ! roughness length, vapour (m)
    real(r8), intent(in) :: obu                 ! Obukhov length (m)
    real(r8), intent(out) :: fm                 ! momentum profile integral (-)
    real(r8), intent(out) :: fh                 ! heat profile integral (-)
    real(r8), intent(out) :: fq                 ! vapour profile integral (-)
    real(r8), intent(in), optional :: lzm       ! log(zldis / z0m) if the caller has it (an iteration at fixed
                                                ! heights); also used for z0h and z0q when they equal z0m (-)
    real(r8), intent(in), optional :: lzh       ! log(zldis / z0h) if the caller has it (-)
    real(r8) :: zeta                            ! zldis / L (-)
    zeta = zldis / obu
    if (present(lzm) .and. z0h == z0m .and. z0q == z0m) then
      call profiles_one_roughness(zldis, z0m, obu, zeta, lzm, fm, fh)
      fq = fh
      return
    end if
    fm = profile_m(zldis, z0m, obu, zeta, lzm)
    if (present(lzh)) then
      fh = profile_h(zldis, z0h, obu, zeta, lzh)
    else if (present(lzm) .and. z0h == z0m) then
      fh = profile_h(zldis, z0h, obu, zeta, lzm)
    else
      fh = profile_h(zldis, z0h, obu, zeta)
    end if
    if (z0q == z0h) then
      fq = fh                                   ! (the usual case: one thermal roughness)
    else
      fq = profile_h(zldis, z0q, obu, zeta)
    end if
  end subroutine mo_profile

  ! profile_m and profile_h for one roughness length (the canopy iteration), with the square roots, the cube
  ! root and the stable branches shared; the same expressions as profile_m / profile_h.
  pure subroutine profiles_one_roughness(zldis, z0, obu, zeta, lz, fm, fh)
    real(r8), intent(in) :: zldis, z0, obu      ! heights (m), Obukhov length (m)
    real(r8), intent(in) :: zeta                ! zldis / obu (-)
    real(r8), intent(in) :: lz                  ! log(zldis / z0) (-)
    real(r8), intent(out) :: fm                 ! momentum profile integral (-)
    real(r8), intent(out) :: fh                 ! heat profile integral (-)
    real(r8) :: x, x0                           ! (1 - 16 zeta)^(1/4) at zldis and at z0 (-)
    real(r8) :: y, y0                           ! (1 - 16 zeta)^(1/2) at zldis and at z0 (-)
    real(r8) :: a0                              ! (1 + x0)^2 (1 + x0^2) (-)
    real(r8) :: cz                              ! (-zeta)^(1/3) (-)
    if (zeta < 0.0_r8) then
      y0 = sqrt(1.0_r8 - 16.0_r8 * z0 / obu)
      x0 = sqrt(y0)
      a0 = (1.0_r8 + x0) * (1.0_r8 + x0) * (1.0_r8 + x0 * x0)
      if (zeta < -zetat) cz = cbrt_pos(-zeta)
      if (zeta < -zetam) then
        fm = log(-zetam * obu / z0 * 0.125_r8 * a0) - 2.0_r8 * atan((x0 - 1.0_r8) / (x0 + 1.0_r8)) - psim_zetam &
             + 1.14_r8 * (cz - zetam_13)
      else
        y = sqrt(1.0_r8 - 16.0_r8 * zeta)
        x = sqrt(y)
        fm = lz - log((1.0_r8 + x) * (1.0_r8 + x) * (1.0_r8 + x * x) / a0) &
             + 2.0_r8 * atan((x - x0) / (1.0_r8 + x * x0))
      end if
      if (zeta < -zetat) then
        fh = log(-zetat * obu / z0 * (0.5_r8 * (1.0_r8 + y0))**2) - psih_zetat + 0.8_r8 * (zetat_m13 - 1.0_r8 / cz)
      else
        fh = lz - 2.0_r8 * log((1.0_r8 + y) / (1.0_r8 + y0))
      end if
    else if (zeta <= 1.0_r8) then
      fm = lz + 5.0_r8 * zeta - 5.0_r8 * z0 / obu
      fh = fm
    else
      fm = lz + 4.0_r8 * log(zeta) + 5.0_r8 - 5.0_r8 * z0 / obu + (zeta - 1.0_r8)
      fh = fm
    end if
  end subroutine profiles_one_roughness

  ! log(zldis / z0), from lz if given (-).
  pure real(r8) function log_height(zldis, z0, lz) result(l)
    real(r8), intent(in) :: zldis, z0           ! heights (m)
    real(r8), intent(in), optional :: lz        ! log(zldis / z0) if known (-)
    if (present(lz)) then
      l = lz
    else
      l = log(zldis / z0)
    end if
  end function log_height

  ! Momentum profile. The Paulson terms at zldis and at z0 are combined: psi_m(zeta) - psi_m(zeta0) =
  ! log(A / A0) - 2 atan((x - x0) / (1 + x x0)), A = (1+x)^2 (1+x^2), x >= 1 (one log and one atan instead
  ! of four logs and two atans); above zeta = 1, log(L/z0) + 5 log(zeta) = log(zldis/z0) + 4 log(zeta).
  pure real(r8) function profile_m(zldis, z0, obu, zeta, lz) result(f)
    real(r8), intent(in) :: zldis, z0, obu      ! heights (m), Obukhov length (m)
    real(r8), intent(in) :: zeta                ! zldis / obu (-)
    real(r8), intent(in), optional :: lz        ! log(zldis / z0) if known (-)
    real(r8) :: x, x0                           ! (1 - 16 zeta)^(1/4) at zldis and at z0 (-)
    real(r8) :: a0                              ! (1 + x0)^2 (1 + x0^2) (-)
    if (zeta < 0.0_r8) then
      x0 = sqrt(sqrt(1.0_r8 - 16.0_r8 * z0 / obu))
      a0 = (1.0_r8 + x0) * (1.0_r8 + x0) * (1.0_r8 + x0 * x0)
      if (zeta < -zetam) then
        ! psi_m(z0/L) = log(a0 / 8) - 2 atan((x0 - 1) / (x0 + 1))
        f = log(-zetam * obu / z0 * 0.125_r8 * a0) - 2.0_r8 * atan((x0 - 1.0_r8) / (x0 + 1.0_r8)) - psim_zetam &
            + 1.14_r8 * (cbrt_pos(-zeta) - zetam_13)
      else
        x = sqrt(sqrt(1.0_r8 - 16.0_r8 * zeta))
        f = log_height(zldis, z0, lz) - log((1.0_r8 + x) * (1.0_r8 + x) * (1.0_r8 + x * x) / a0) &
            + 2.0_r8 * atan((x - x0) / (1.0_r8 + x * x0))
      end if
    else if (zeta <= 1.0_r8) then
      f = log_height(zldis, z0, lz) + 5.0_r8 * zeta - 5.0_r8 * z0 / obu
    else
      f = log_height(zldis, z0, lz) + 4.0_r8 * log(zeta) + 5.0_r8 - 5.0_r8 * z0 / obu + (zeta - 1.0_r8)
    end if
  end function profile_m

  ! Heat / vapour profile; psi_h(zeta) - psi_h(zeta0) = 2 log((1 + y) / (1 + y0)), y = (1 - 16 zeta)^(1/2).
  pure real(r8) function profile_h(zldis, z0, obu, zeta, lz) result(f)
    real(r8), intent(in) :: zldis, z0, obu      ! heights (m), Obukhov length (m)
    real(r8), intent(in) :: zeta                ! zldis / obu (-)
    real(r8), intent(in), optional :: lz        ! log(zldis / z0) if known (-)
    real(r8) :: y0                              ! (1 - 16 z0 / L)^(1/2) (-)
    if (zeta < 0.0_r8) then
      y0 = sqrt(1.0_r8 - 16.0_r8 * z0 / obu)
      if (zeta < -zetat) then
        f = log(-zetat * obu / z0 * (0.5_r8 * (1.0_r8 + y0))**2) - psih_zetat &
            + 0.8_r8 * (zetat_m13 - 1.0_r8 / cbrt_pos(-zeta))
      else
        f = log_height(zldis, z0, lz) - 2.0_r8 * log((1.0_r8 + sqrt(1.0_r8 - 16.0_r8 * zeta)) / (1.0_r8 + y0))
      end if
    else if (zeta <= 1.0_r8) then
      f = log_height(zldis, z0, lz) + 5.0_r8 * zeta - 5.0_r8 * z0 / obu
    else
      f = log_height(zldis, z0, lz) + 4.0_r8 * log(zeta) + 5.0_r8 - 5.0_r8 * z0 / obu + (zeta - 1.0_r8)
    end if
  end function profile_h

  ! First guess of the Obukhov length from the bulk Richardson number (CLM/CoLM "moninobukini";
  ! zeta ~ Ri ln(z/z0) / (1 - 5 Ri) in stable, Ri ln(z/z0) in unstable air).
  pure subroutine obukhov_initial(ur, thv, dthv, zldis, z0m, um, obu, lzm)
    real(r8), intent(in) :: ur                  ! wind speed at the reference height (m s-1)
    real(r8), intent(in) :: thv                 ! virtual potential temperature at the reference height (K)
    real(r8), intent(in) :: dthv                ! theta_v(reference) - theta_v(surface) (K)
    real(r8), intent(in) :: zldis               ! reference height minus displacement height (m)
    real(r8), intent(in) :: z0m                 ! roughness length, momentum (m)
    real(r8), intent(out) :: um                 ! wind speed including the convective velocity (m s-1)
    real(r8), intent(out) :: obu                ! Obukhov length (m)
    real(r8), intent(in), optional :: lzm       ! log(zldis / z0m) if the caller has it (-)
    real(r8) :: rib                             ! bulk Richardson number (-)
    real(r8) :: zeta                            ! z / L (-)
    if (dthv >= 0.0_r8) then
      um = max(ur, wind_min)
    else
      um = sqrt(ur * ur + 0.25_r8)              ! first guess w* = 0.5 m s-1
    end if
    rib = grav * zldis * dthv / (thv * um * um)
    if (rib >= 0.0_r8) then
      rib = min(rib, 0.19_r8)                   ! below the critical Richardson number 0.2
      zeta = rib * log_height(zldis, z0m, lzm) / (1.0_r8 - 5.0_r8 * rib)
      zeta = min(zeta_max, max(zeta, 0.01_r8))
    else
      zeta = rib * log_height(zldis, z0m, lzm)
      zeta = max(zeta_min, min(zeta, -0.01_r8))
    end if
    obu = zldis / zeta
  end subroutine obukhov_initial

  ! New Obukhov length from the scaling parameters, and the wind including Beljaars' convective velocity.
  ! L = theta_v u*^2 / (k g theta_v*), theta_v* = theta* (1 + 0.61 q) + 0.61 theta q*.
  pure subroutine obukhov_update(ur, ustar, tstar, qstar, th, q, zldis, obu, um)
    real(r8), intent(in) :: ur                  ! wind speed at the reference height (m s-1)
    real(r8), intent(in) :: ustar               ! friction velocity (m s-1)
    real(r8), intent(in) :: tstar               ! temperature scale, -H / (rho cp u*) (K)
    real(r8), intent(in) :: qstar               ! humidity scale, -E / (rho u*) (kg kg-1)
    real(r8), intent(in) :: th                  ! potential temperature at the reference height (K)
    real(r8), intent(in) :: q                   ! specific humidity at the reference height (kg kg-1)
    real(r8), intent(in) :: zldis               ! reference height minus displacement height (m)
    real(r8), intent(out) :: obu                ! Obukhov length (m)
    real(r8), intent(out) :: um                 ! wind speed including the convective velocity (m s-1)
    real(r8) :: thv                             ! virtual potential temperature (K)
    real(r8) :: thvstar                         ! virtual potential temperature scale (K)
    real(r8) :: zeta                            ! z / L (-)
    real(r8) :: wc                              ! convective velocity (m s-1)
    thv = th * (1.0_r8 + 0.61_r8 * q)
    thvstar = tstar * (1.0_r8 + 0.61_r8 * q) + 0.61_r8 * th * qstar
    zeta = zldis * vonkar * grav * thvstar / (ustar * ustar * thv)
    if (zeta >= 0.0_r8) then
      zeta = min(zeta_max, max(zeta, zeta_eps))
      um = max(ur, wind_min)
    else
      zeta = max(zeta_min, min(zeta, -zeta_eps))
      ! w* from the buoyancy flux itself (u* theta_v* = -flux), so it cannot feed back on u*
      wc = beta_w * cbrt_pos(-grav * ustar * thvstar * zi_pbl / thv)
      um = sqrt(ur * ur + wc * wc)
    end if
    obu = zldis / zeta
  end subroutine obukhov_update

  ! Under-relaxation of the stability iteration: when the change of zeta = z/L reverses direction between
  ! two iterations (a two-cycle of the fixed point zeta -> F(zeta), which the strong stable feedback of
  ! resistances on fluxes produces), the relaxation weight is halved (down to 1/16), so that the coupled
  ! leaf-temperature / stability iteration converges. The wind with the convective velocity is relaxed with
  ! the same weight. zeta keeps |zeta| >= 1e-6.
  pure subroutine relax_obukhov(zldis, obu_old, um_old, obu, um, dzeta_prev, wrelax)
    real(r8), intent(in) :: zldis                ! reference height minus displacement height (m)
    real(r8), intent(in) :: obu_old              ! Obukhov length of the previous iteration (m)
    real(r8), intent(in) :: um_old               ! wind incl. convective velocity, previous iteration (m s-1)
    real(r8), intent(inout) :: obu               ! new Obukhov length; relaxed on output (m)
    real(r8), intent(inout) :: um                ! new wind incl. convective velocity; relaxed on output (m s-1)
    real(r8), intent(inout) :: dzeta_prev        ! zeta change of the previous iteration (-)
    real(r8), intent(inout) :: wrelax            ! relaxation weight, start with 1 (-)
    real(r8) :: zold, dzeta, znew                ! stability parameters (-)
    zold = zldis / obu_old
    dzeta = zldis / obu - zold
    if (dzeta * dzeta_prev < 0.0_r8) wrelax = max(0.5_r8 * wrelax, 0.0625_r8)
    znew = zold + wrelax * dzeta
    if (abs(znew) < zeta_eps) znew = sign(zeta_eps, zldis / obu)
    obu = zldis / znew
    um = um_old + wrelax * (um - um_old)
    dzeta_prev = wrelax * dzeta
  end subroutine relax_obukhov

  ! Cube root of x > 0: a first guess with about 5 correct bits from the bit pattern (exponent / 3, as in
  ! fdlibm's cbrt) and three Halley steps y <- y (y^3 + 2x) / (2y^3 + x) (cubic convergence: 5 -> 15 -> 45 ->
  ! 53 bits); within 2 ulp (x**(1/3) itself is 3 ulp off, 1/3 not being exact) at a quarter of the cost of
  ! pow. Zero, subnormal, infinite or NaN arguments go to x**(1/3).
  elemental real(r8) function cbrt_pos(x) result(y)
    real(r8), intent(in) :: x                   ! argument (-)
    integer(int64), parameter :: b1 = 3071306043645493248_int64 ! 715094163 * 2^32: exponent bias term (-)
    real(r8) :: y3                              ! y^3 (-)
    integer :: k
    if (x >= tiny(x) .and. x <= huge(x)) then
      y = transfer(transfer(x, b1) / 3_int64 + b1, y)
      do k = 1, 3
        y3 = y * y * y
        y = y * (y3 + 2.0_r8 * x) / (2.0_r8 * y3 + x)
      end do
    else
      y = x**(1.0_r8/3.0_r8)
    end if
  end function cbrt_pos

  ! Zeng and Dickinson (1998) roughness length for heat/vapour of bare soil and snow.
  elemental real(r8) function thermal_roughness(z0m, ustar) result(z0h)
    real(r8), intent(in) :: z0m                 ! roughness length, momentum (m)
    real(r8), intent(in) :: ustar               ! friction velocity (m s-1)
    z0h = z0m * exp(-log_z0m_z0h(z0m, ustar))
  end function thermal_roughness

  ! log(z0m / z0h) = 0.13 (u* z0m / nu)^0.45 of Zeng and Dickinson (1998) (x^0.45 as exp(0.45 log x): half
  ! the cost of pow, a few ulp).
  elemental real(r8) function log_z0m_z0h(z0m, ustar) result(kh)
    real(r8), intent(in) :: z0m                 ! roughness length, momentum (m)
    real(r8), intent(in) :: ustar               ! friction velocity (m s-1)
    kh = 0.13_r8 * exp(0.45_r8 * log(ustar * z0m / nu_air))
  end function log_z0m_z0h

  ! Saturation vapour pressure (Buck 1981; liquid above tfrz, ice below) and saturation specific humidity.
  elemental subroutine qsat(t, p, es, desdt, qs, dqsdt)
    real(r8), intent(in) :: t                   ! temperature (K)
    real(r8), intent(in) :: p                   ! air pressure (Pa)
    real(r8), intent(out) :: es                 ! saturation vapour pressure (Pa)
    real(r8), intent(out) :: desdt              ! d es / dT (Pa K-1)
    real(r8), intent(out) :: qs                 ! saturation specific humidity (kg kg-1)
    real(r8), intent(out) :: dqsdt              ! d qs / dT (kg kg-1 K-1)
    real(r8) :: tc                              ! temperature (deg C)
    real(r8) :: den                             ! p - 0.378 es (Pa)
    tc = min(max(t, 173.15_r8), 373.15_r8) - 273.15_r8
    if (t > tfrz) then
      es = 611.21_r8 * exp(17.502_r8 * tc / (tc + 240.97_r8))
      desdt = es * 17.502_r8 * 240.97_r8 / (tc + 240.97_r8)**2
    else
      es = 611.15_r8 * exp(22.452_r8 * tc / (tc + 272.55_r8))
      desdt = es * 22.452_r8 * 272.55_r8 / (tc + 272.55_r8)**2
    end if
    es = min(es, 0.5_r8 * p)                    ! keeps qs finite at very low pressure
    den = p - 0.378_r8 * es
    qs = 0.622_r8 * es / den
    dqsdt = 0.622_r8 * p / (den * den) * desdt
  end subroutine qsat
end module colm_turbulence
